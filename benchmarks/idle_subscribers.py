"""What idle event subscribers of another tenant cost a busy server.

Run: ``python -m benchmarks.idle_subscribers [--jobs 3000] [--subscribers 200]``.
One process serves the HTTP API (through Quart's in-process test client)
over a runtime on a fresh SQLite file. ``--jobs`` no-op jobs of tenant ``a``
wait in a paused queue; ``--subscribers`` SSE streams (``GET /api/v1/events``) of
tenant ``b``, each with a token of its own, are opened and read their
first bytes, then sit idle: none of the events is theirs. One stream of
tenant ``a`` reads every event, to measure its lag. The queue is resumed and
the clock runs until every job has finished.

Prints one JSON line: wall seconds, the process's CPU seconds over the drain
and how much of it the cyclic garbage collector took (it walks every live
object, the idle streams' too), and the lag of tenant ``a``'s stream (event
time to frame read; its reader shares the process), p50 and p95 in
milliseconds. Compare ``--subscribers 0`` with the default: the idle
streams should cost next to nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime
from runtime.api import ApiConfig, TokenEntry, create_app

QUEUE = "default"
A_TOKEN = "tenant-a-reader-token-000001"
ADMIN_TOKEN = "admin-bench-token-00000001"

registry = Registry()
_done = {"count": 0, "target": 0}
_all_done = trio.Event()  # made anew by each measure()


class Empty(BaseModel):
    pass


@registry.job(name="noop", queue=QUEUE)
async def noop(ctx: JobContext, params: Empty) -> None:
    _done["count"] += 1
    if _done["count"] >= _done["target"]:
        _all_done.set()


def _b_token(i: int) -> str:
    return f"tenant-b-idle-token-{i:08d}"


@asynccontextmanager
async def _stream(client: Any, token: str) -> AsyncIterator[Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with client.request("/api/v1/events", method="GET", headers=headers) as conn:
        await conn.send_complete()
        try:
            yield conn
        finally:
            await conn.disconnect()
            conn._client_send.close()  # a stream walked away from (see tests/api/sse.py)


async def _first_bytes(conn: Any) -> None:
    buffer = b""
    while b"\n\n" not in buffer:
        buffer += await conn.receive()


async def _read_lags(conn: Any, lags: list[float]) -> None:
    buffer = b""
    while True:
        try:
            buffer += await conn.receive()
        except trio.EndOfChannel:
            return
        now = time.time()
        while b"\n\n" in buffer:
            raw, buffer = buffer.split(b"\n\n", 1)
            for line in raw.decode().split("\n"):
                if line.startswith("data: {"):
                    at = json.loads(line[6:]).get("at")
                    if at:
                        lags.append(now - datetime.fromisoformat(at).timestamp())


async def measure(jobs: int, subscribers: int, directory: Path) -> dict[str, float]:
    url = f"sqlite:///{directory / 'idle.db'}"
    async with Runtime(url, registry=registry, workers=False) as client:
        await client.pause_queue(QUEUE)
        for first in range(0, jobs, 10_000):
            await client.enqueue_many("noop", [{}] * min(10_000, jobs - first), tenant_id="a")
    tokens = [
        TokenEntry(token=ADMIN_TOKEN, role="admin"),
        TokenEntry(token=A_TOKEN, tenant="a", role="viewer"),
        *(TokenEntry(token=_b_token(i), tenant="b", role="viewer") for i in range(subscribers)),
    ]
    config = ApiConfig(tokens=tuple(tokens), sse_keepalive=600.0, sse_poll=600.0)
    global _all_done
    _done["count"], _done["target"] = 0, jobs
    _all_done = trio.Event()
    lags: list[float] = []
    async with Runtime(url, registry=registry, queues={QUEUE: 10}) as rt:
        app = create_app(rt, config)
        async with app.test_app() as test_app, AsyncExitStack() as stack:
            http = test_app.test_client()
            for i in range(subscribers):
                conn = await stack.enter_async_context(_stream(http, _b_token(i)))
                await _first_bytes(conn)
            reader = await stack.enter_async_context(_stream(http, A_TOKEN))
            await _first_bytes(reader)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_read_lags, reader, lags)
                gc.callbacks.append(_gc_timer)
                cpu, wall = time.process_time(), time.perf_counter()
                await rt.resume_queue(QUEUE)
                await _all_done.wait()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                gc.callbacks.remove(_gc_timer)
                await trio.sleep(0.2)  # the last events reach the reader
                nursery.cancel_scope.cancel()
        finished = await rt.count(status="completed")
    if finished != jobs:
        raise RuntimeError(f"{finished} of {jobs} jobs completed")
    lags.sort()
    return {
        "jobs": jobs,
        "subscribers": subscribers,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "gc_s": round(_gc["total"], 3),
        "lag_p50_ms": round(_pct(lags, 0.50) * 1000, 1),
        "lag_p95_ms": round(_pct(lags, 0.95) * 1000, 1),
        "events_read": len(lags),
    }


_gc = {"total": 0.0, "since": 0.0}


def _gc_timer(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc["since"] = time.process_time()
    else:
        _gc["total"] += time.process_time() - _gc["since"]


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3_000)
    parser.add_argument("--subscribers", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as directory:
        result = trio.run(measure, args.jobs, args.subscribers, Path(directory))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
