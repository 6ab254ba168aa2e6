from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

import pytest
import trio

from runtime import Registry, Runtime
from runtime.api import ApiConfig
from runtime.api.server import serve_api
from runtime.cli import main
from tests.api.conftest import TOKEN_ENTRIES, TOKENS
from tests.api.jobs import Gates, register


class Output(io.StringIO):
    """stdout for a command run in a thread; trio code can wait for text in it."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = trio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        trio.from_thread.run_sync(self._wake)
        return written

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, text: str) -> None:
        while text not in self.getvalue():
            await self._changed.wait()


@dataclass
class Served:
    rt: Runtime
    url: str
    gates: Gates

    async def run(self, *argv: str, token: str | None = "admin") -> tuple[int, str]:
        """``callboard ARGV`` in a thread against this server: (exit code, stdout)."""
        out = Output()
        code = await self.start(out, *argv, token=token)
        return code, out.getvalue()

    async def start(self, out: Output, *argv: str, token: str | None = "admin") -> int:
        args = [*argv, "--url", self.url]
        if token is not None:
            args += ["--token", TOKENS[token]]
        return await trio.to_thread.run_sync(partial(main, args, out=out))


@pytest.fixture
async def served(
    make_runtime: Callable[..., Runtime], registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Served]:
    monkeypatch.delenv("CALLBOARD_URL", raising=False)
    monkeypatch.delenv("CALLBOARD_TOKEN", raising=False)
    gates = Gates()
    register(registry, gates)
    config = ApiConfig(tokens=TOKEN_ENTRIES)
    async with make_runtime() as rt, trio.open_nursery() as nursery:
        urls = await nursery.start(
            partial(serve_api, rt, bind="127.0.0.1:0", config=config, graceful_timeout=0.5)
        )
        yield Served(rt, urls[0], gates)
        nursery.cancel_scope.cancel()
