"""A runtime in a child process that says when it leads, for the PostgreSQL
scale-out tests: ``python -m tests.chaos.pg_ops_support URL HOSTNAME``.

It pretends to run on host ``HOSTNAME``, so two children on this machine
rescue each other's jobs as runtimes on two hosts do: by the lease only,
never by seeing the other's process gone. It prints ``ready WORKER_ID``, then
``leading`` or ``following`` whenever that changes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import trio
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime

ROOT = Path(__file__).resolve().parents[2]


class Nap(BaseModel):
    seconds: float = 60.0


def register(registry: Registry) -> None:
    @registry.job(name="nap", max_retries=0)
    async def nap(ctx: JobContext, params: Nap) -> None:
        await anyio.sleep(params.seconds)


async def start_child(url: str, hostname: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.chaos.pg_ops_support", url, hostname],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


class Lines:
    """The lines a child prints, one at a time."""

    def __init__(self, child: trio.Process) -> None:
        assert child.stdout is not None
        self._stream = child.stdout
        self._buffer = b""

    async def next(self) -> str:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some()
            assert chunk, "the child exited"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Wait until ``check()`` holds: state in another process or in the
    database, which announces nothing to wait on, so it is asked every 20 ms."""
    with trio.fail_after(timeout):
        while True:
            if await check():
                return
            await trio.sleep(0.02)


async def kill(child: trio.Process) -> None:
    if child.returncode is None:
        child.send_signal(signal.SIGKILL)
    await child.wait()
    if child.stdout is not None:
        await child.stdout.aclose()


async def _main(url: str, hostname: str) -> None:
    socket.gethostname = lambda: hostname  # type: ignore[assignment]  # see the docstring
    registry = Registry()
    register(registry)
    async with Runtime(url, registry=registry, queues={"default": 8}) as rt:
        print("ready", rt.worker_id, flush=True)
        said = None
        while True:
            if rt.leading != said:
                said = rt.leading
                print("leading" if said else "following", flush=True)
            await trio.sleep(0.01)


if __name__ == "__main__":
    trio.run(_main, sys.argv[1], sys.argv[2])
