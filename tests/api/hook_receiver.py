"""A real HTTP receiver for status hooks on 127.0.0.1, and a runtime with the
hook service beside it (shared by tests/api/test_hooks.py and tests/chaos/)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import request
from quart_trio import QuartTrio

from runtime import Job, Runtime
from runtime.api.hook_policy import HookPolicy
from runtime.api.hooks import Hooks

SECRET = b"test-hook-secret"
# The receivers listen on loopback, which hooks may reach only when allowed.
LOOPBACK = HookPolicy.parse(["127.0.0.0/8"])


@dataclass
class Received:
    status: int
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]
    at: float  # trio.current_time() on arrival


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then ``default``) and records it."""

    script: list[int] = field(default_factory=list)
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    _changed: trio.Event = field(default_factory=trio.Event)

    def app(self) -> QuartTrio:
        app = QuartTrio("receiver", static_folder=None)

        @app.post("/hook")
        async def hook() -> tuple[str, int, dict[str, str]]:
            raw = await request.get_data(False, False, False)
            status = self.script.pop(0) if self.script else self.default
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append(
                Received(status, json.loads(raw), raw, headers, trio.current_time())
            )
            self._changed.set()
            self._changed = trio.Event()
            extra = {"Location": "http://127.0.0.1:9/elsewhere"} if 300 <= status < 400 else {}
            return "secret body the tenant must not read", status, extra

        return app

    async def wait_for(self, done: Callable[[list[Received]], bool]) -> None:
        while not done(self.requests):
            await self._changed.wait()

    def delivered(self) -> list[Received]:
        return [r for r in self.requests if r.status == 200]


@asynccontextmanager
async def receiving(script: list[int] | None = None, default: int = 200) -> AsyncIterator[Receiver]:
    receiver = Receiver(script=list(script or []), default=default)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(serve, receiver.app(), config)
        receiver.url = f"{urls[0]}/hook"
        yield receiver
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def running(make_runtime: Callable[..., Runtime], hooks: Hooks) -> AsyncIterator[Runtime]:
    async with make_runtime() as rt, trio.open_nursery() as nursery:
        await nursery.start(hooks.run, rt)
        yield rt
        nursery.cancel_scope.cancel()


async def delivery_reaching(rt: Runtime, key: str, status: str) -> Job:
    """The delivery with idempotency key ``key`` once it has ``status`` (re-read
    on every event: the delivery may not even exist yet)."""
    with rt.subscribe() as events:
        while True:
            found = await rt.get_by_idempotency_key(key)
            if found is not None and found.status == status:
                return found
            await events.receive()
