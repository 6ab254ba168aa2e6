"""The HTTP API under load: ``python -m benchmarks.api_load``.

Two workloads against ``callboard``'s API served by Hypercorn in its own
process (the runtime without workers, so only the API and the store work):

* ``GET /api/v1/jobs?status=running&page_size=50`` with 1,000,000 jobs stored;
* ``POST /api/v1/jobs`` at the highest rate the load generator sustains.

The load generator is a closed loop of keep-alive HTTP/1.1 connections on
loopback (a minimal client on trio sockets, so that it costs less than the
server). It prints p50/p99 latency and requests per second, and the SQLite
query plans of the listing (which must use indexes, not scans).

Options: ``--jobs N`` (stored jobs, default 1,000,000), ``--seconds S`` per
workload, ``--concurrency C``, ``--keep`` (reuse the filled database in
``benchmarks/.work/api-load/``), ``--json FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

WORK = Path(__file__).resolve().parent / ".work" / "api-load"
JOBS_DEFAULT = 1_000_000
SECONDS_DEFAULT = 10.0
WARMUP_SECONDS = 1.0
CONCURRENCY_DEFAULT = 16
BATCH = 50_000
JOB_TYPE = "bench.noop"
RUNNING_SHARE = 0.0005  # 500 of 1,000,000 running; the rest mostly finished


# -- the server process ---------------------------------------------------------------


def _registry() -> Any:
    from pydantic import BaseModel

    from runtime import JobContext, Registry

    class Noop(BaseModel):
        n: int = 0

    registry = Registry()

    @registry.job(name=JOB_TYPE, params=Noop)
    async def noop(ctx: JobContext, params: Noop) -> int:
        return params.n

    return registry


async def _serve(db: str, port_file: Path) -> None:
    from runtime import Runtime
    from runtime.api.server import serve_api

    async with Runtime(db, registry=_registry(), workers=False) as rt, trio.open_nursery() as n:
        urls = await n.start(_start(rt, serve_api))
        await trio.Path(port_file).write_text(urls[0].rpartition(":")[2])
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
        n.cancel_scope.cancel()


def _start(rt: Any, serve_api: Any) -> Any:
    async def run(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_api(rt, bind="127.0.0.1:0", task_status=task_status)

    return run


# -- filling the store ----------------------------------------------------------------


def fill(db: str, count: int) -> float:
    """Store ``count`` jobs straight into the table (as the runtime would have)."""
    from sqlalchemy import insert

    from runtime.jobs.enqueue import build_rows
    from runtime.store import Store
    from runtime.store.tables import jobs

    store = Store(db)
    template = build_rows(_registry().get(JOB_TYPE), [{}], now=time.time())[0]
    started = time.perf_counter()
    now = time.time() - count * 0.01
    running = max(1, int(count * RUNNING_SHARE))
    with store.engine.begin() as conn:
        for first in range(0, count, BATCH):
            rows = []
            for i in range(first, min(count, first + BATCH)):
                status = "running" if i % (count // running) == 0 else _finished(i)
                at = now + i * 0.01
                rows.append(
                    {**template, "id": uuid.uuid4(), "status": status, "created_at": at,
                     "scheduled_at": at, "updated_at": at, "params": {"n": i}}
                )  # fmt: skip
            conn.execute(insert(jobs), rows)
    store.dispose()
    return time.perf_counter() - started


def _finished(i: int) -> str:
    return "failed" if i % 50 == 1 else "waiting" if i % 997 == 2 else "completed"


def query_plans(path: Path) -> dict[str, list[str]]:
    """SQLite's plans for the listing's two queries (the page and its count)."""
    from sqlalchemy import func, select
    from sqlalchemy.dialects import sqlite

    from runtime.store.reads import _filtered
    from runtime.store.tables import jobs

    filters = {"status": ["running"]}
    page = _filtered(select(jobs), filters).order_by(jobs.c.created_at.desc(), jobs.c.id)
    count = _filtered(select(func.count()).select_from(jobs), filters)
    plans = {}
    with sqlite3.connect(path) as conn:
        for name, query in (("page", page.limit(50)), ("count", count)):
            literal = {"literal_binds": True}
            sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs=literal))
            plans[name] = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    return plans


# -- the load generator ---------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    statuses: dict[str, int]


async def _exchange(stream: trio.SocketStream, request: bytes, buf: bytearray) -> int:
    await stream.send_all(request)
    while (end := buf.find(b"\r\n\r\n")) < 0:
        buf += await stream.receive_some(1 << 16)
    head = bytes(buf[:end]).decode("latin-1").lower()
    length = int(head.split("content-length:")[1].split("\r\n")[0])
    del buf[: end + 4]
    while len(buf) < length:
        buf += await stream.receive_some(1 << 16)
    del buf[:length]
    return int(head[9:12])


async def load(name: str, port: int, request: bytes, seconds: float, concurrency: int) -> Result:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    measuring = False

    async def connection() -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buf = bytearray()
        while True:
            started = time.perf_counter()
            status = await _exchange(stream, request, buf)
            if measuring:
                latencies.append(time.perf_counter() - started)
                statuses[str(status)] += 1

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(connection)
        await trio.sleep(WARMUP_SECONDS)
        measuring = True
        began = time.perf_counter()
        await trio.sleep(seconds)
        measuring = False
        took = time.perf_counter() - began
        nursery.cancel_scope.cancel()
    ms = sorted(x * 1000 for x in latencies)
    return Result(
        name=name,
        requests=len(ms),
        seconds=round(took, 2),
        rps=round(len(ms) / took, 1),
        p50_ms=round(ms[len(ms) // 2], 2),
        p99_ms=round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        mean_ms=round(statistics.fmean(ms), 2),
        statuses=dict(statuses),
    )


def _request(method: str, target: str, body: bytes = b"") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


# -- the run ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api_load", description=__doc__)
    parser.add_argument("--jobs", type=int, default=JOBS_DEFAULT)
    parser.add_argument("--seconds", type=float, default=SECONDS_DEFAULT)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY_DEFAULT)
    parser.add_argument("--keep", action="store_true", help="reuse the filled database")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the server process
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        trio.run(_serve, args.serve, Path(args.port_file))
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"jobs-{args.jobs}.sqlite3"
    if not (args.keep and path.exists()):
        for old in WORK.glob(f"jobs-{args.jobs}.sqlite3*"):
            old.unlink()
        print(f"filling {args.jobs:,} jobs ...", flush=True)
        print(f"  filled in {fill(f'sqlite:///{path}', args.jobs):.1f}s", flush=True)
    plans = query_plans(path)
    for name, steps in plans.items():
        print(f"plan of the {name}: {' | '.join(steps)}")
    results = _run_workloads(path, args)
    for r in results:
        print(
            f"{r.name:<44} {r.rps:>8,.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms"
            f"  ({r.requests:,} requests, {r.statuses})"
        )
    if args.json:
        document = {"jobs": args.jobs, "plans": plans, "results": [asdict(r) for r in results]}
        Path(args.json).write_text(json.dumps(document, indent=2))
    return 0


def _run_workloads(path: Path, args: argparse.Namespace) -> list[Result]:
    port_file = WORK / f"port-{os.getpid()}"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.api_load", "--serve", f"sqlite:///{path}",
         "--port-file", str(port_file)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the API server did not start")
            time.sleep(0.05)
        port = int(port_file.read_text())
        listing = _request("GET", "/api/v1/jobs?status=running&page_size=50")
        body = json.dumps({"type": JOB_TYPE, "params": {"n": 1}}).encode()
        enqueue = _request("POST", "/api/v1/jobs", body)
        return [
            trio.run(load, "GET /jobs?status=running&page_size=50", port, listing, args.seconds,
                     args.concurrency),
            trio.run(load, "POST /jobs", port, enqueue, args.seconds, args.concurrency),
        ]  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        port_file.unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
