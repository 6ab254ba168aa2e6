"""The peers of ``benchmarks.scaleout``, across processes: pgqueuer, procrastinate
and a raw psycopg floor, each on one fresh database.

Run by ``benchmarks.scaleout`` under each peer's own interpreter (pgqueuer's
and procrastinate's virtualenvs, see ``benchmarks.environments``; the raw
floor under Callboard's, which has psycopg). It imports nothing of this
project and only the standard library at module level, so it runs as a plain
script anywhere::

    python benchmarks/scaleout_peers.py run SYSTEM WORKLOAD URL [--processes N] [--jobs N]
    python benchmarks/scaleout_peers.py worker SYSTEM URL --kind noop|limited2

``run`` takes an empty database (``benchmarks.scaleout`` makes one per run),
starts worker processes (``worker``), drives the
workload from its own process and prints its figures as JSON; every figure
counts completed jobs in the store. The workloads are those of
``benchmarks.scaleout``: ``pickup`` (p50/p99 of start minus enqueue time,
one job every 20 ms to an idle worker process), ``limit2`` (a type limited to
2 at once, 50 ms jobs, running count sampled every 5 ms) and ``drain`` (no-op
jobs, jobs/s and the workers' CPU per 1,000 jobs).

The raw floor: one table, an enqueue is one statement (``INSERT`` and
``pg_notify`` in a CTE), a worker ``LISTEN``s, claims up to 100 due jobs with
``FOR UPDATE SKIP LOCKED``, runs them and marks them done in one statement.
It has no limits (``limit2`` is n/a). procrastinate has no limit above one at
a time (its ``lock`` serialises): ``limit2`` is n/a there too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

CONCURRENCY = 10
LIMITED = "limited2"
LIMIT = 2
NAP_S = 0.05
READY_TIMEOUT_S = 60.0
DONE_TIMEOUT_S = 600.0

Handler = Callable[[Any], Awaitable[None]]

# -- shared helpers ----------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the systems ---------------------------------------------------------------


class Peer:
    """One system: its schema, its client calls and its worker."""

    name = ""
    limits = True

    def __init__(self, url: str) -> None:
        self.url = url

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def install(self) -> None: ...

    async def enqueue(self, kind: str) -> Any:
        """Store one job of ``kind``; its id."""
        raise NotImplementedError

    async def enqueue_many(self, kind: str, count: int) -> None:
        raise NotImplementedError

    async def completed(self) -> int:
        raise NotImplementedError

    async def running(self, kind: str) -> int:
        raise NotImplementedError

    async def serve(self, kind: str, stop: asyncio.Event, starts: dict[str, float]) -> None:
        """Run a worker on ``kind`` until ``stop``; note each job's start in ``starts``."""
        raise NotImplementedError


class Pgqueuer(Peer):
    name = "pgqueuer"

    async def open(self) -> None:
        import asyncpg  # type: ignore[import-not-found]
        from pgqueuer import AsyncpgDriver, Queries  # type: ignore[import-not-found]

        self._conn = await asyncpg.connect(self.url)
        self.queries = Queries(AsyncpgDriver(self._conn))

    async def close(self) -> None:
        await self._conn.close()

    async def install(self) -> None:
        if not await self.queries.schema_is_installed():
            await self.queries.install()

    async def enqueue(self, kind: str) -> Any:
        payload = str(NAP_S).encode() if kind == LIMITED else None
        (job_id,) = await self.queries.enqueue(kind, payload)
        return job_id

    async def enqueue_many(self, kind: str, count: int) -> None:
        payload = str(NAP_S).encode() if kind == LIMITED else None
        for first in range(0, count, 10_000):
            n = min(10_000, count - first)
            await self.queries.enqueue([kind] * n, [payload] * n, [0] * n)

    async def completed(self) -> int:
        return int(
            await self._conn.fetchval(
                "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"
            )
        )

    async def running(self, kind: str) -> int:
        return int(
            await self._conn.fetchval(
                "SELECT count(*) FROM pgqueuer WHERE entrypoint = $1 AND status = 'picked'", kind
            )
        )

    async def serve(self, kind: str, stop: asyncio.Event, starts: dict[str, float]) -> None:
        from pgqueuer import PgQueuer

        async def handler(job: Any) -> None:
            starts[str(job.id)] = time.time()
            if kind == LIMITED:
                await asyncio.sleep(float(job.payload))

        pgq = PgQueuer(self.queries.driver)
        # Its concurrency_limit is global (across processes); 0: unlimited.
        pgq.entrypoint(kind, concurrency_limit=LIMIT if kind == LIMITED else 0)(handler)
        task = asyncio.create_task(pgq.run(batch_size=CONCURRENCY))
        await stop.wait()
        pgq.shutdown.set()
        await task


class Procrastinate(Peer):
    name = "procrastinate"
    limits = False

    async def open(self) -> None:
        import procrastinate  # type: ignore[import-not-found]

        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.url))
        self._starts: dict[str, float] = {}
        starts = self._starts

        async def noop(context: Any) -> None:
            starts[str(context.job.id)] = time.time()

        self.noop = self.app.task(name="noop", queue="default", pass_context=True)(noop)
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def install(self) -> None:
        await self.app.schema_manager.apply_schema_async()

    async def enqueue(self, kind: str) -> Any:
        return await self.noop.defer_async()

    async def enqueue_many(self, kind: str, count: int) -> None:
        for first in range(0, count, 10_000):
            await self.noop.batch_defer_async(*[{}] * min(10_000, count - first))

    async def completed(self) -> int:
        row = await self.app.connector.execute_query_one_async(
            "SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'succeeded'"
        )
        return int(row["n"])

    async def serve(self, kind: str, stop: asyncio.Event, starts: dict[str, float]) -> None:
        self._starts.clear()
        task = asyncio.create_task(
            self.app.run_worker_async(
                queues=["default"], concurrency=CONCURRENCY, install_signal_handlers=False
            )
        )
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        starts.update(self._starts)


_RAW_SCHEMA = """
create table if not exists raw_jobs (
    id bigint generated always as identity primary key,
    kind text not null,
    status text not null default 'waiting',
    created_at timestamptz not null default now()
);
create index if not exists raw_jobs_due on raw_jobs (id) where status = 'waiting';
"""
_RAW_ENQUEUE = (
    "with new as (insert into raw_jobs (kind) values (%s) returning id) "
    "select id, pg_notify('raw_jobs', '') from new"
)
_RAW_CLAIM = """
update raw_jobs set status = 'running'
where id in (
    select id from raw_jobs where status = 'waiting' order by id limit 100
    for update skip locked
)
returning id
"""
_RAW_DONE = "update raw_jobs set status = 'done' where id = any(%s)"


class Raw(Peer):
    name = "raw_psycopg"
    limits = False

    async def open(self) -> None:
        import psycopg

        self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    async def close(self) -> None:
        await self._conn.close()

    async def install(self) -> None:
        await self._conn.execute(_RAW_SCHEMA)

    async def enqueue(self, kind: str) -> Any:
        cursor = await self._conn.execute(_RAW_ENQUEUE, (kind,))
        row = await cursor.fetchone()
        assert row is not None
        return row[0]

    async def enqueue_many(self, kind: str, count: int) -> None:
        copying = "copy raw_jobs (kind) from stdin"
        async with self._conn.cursor() as cursor, cursor.copy(copying) as copy:
            for _ in range(count):
                await copy.write_row((kind,))
        await self._conn.execute("select pg_notify('raw_jobs', '')")

    async def completed(self) -> int:
        cursor = await self._conn.execute("select count(*) from raw_jobs where status = 'done'")
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def serve(self, kind: str, stop: asyncio.Event, starts: dict[str, float]) -> None:
        import psycopg

        listener = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        await listener.execute("listen raw_jobs")
        try:
            while not stop.is_set():
                async with self._conn.transaction():
                    cursor = await self._conn.execute(_RAW_CLAIM)
                    ids = [row[0] for row in await cursor.fetchall()]
                if ids:
                    for job_id in ids:
                        starts[str(job_id)] = time.time()
                    await self._conn.execute(_RAW_DONE, (ids,))
                    continue
                # Nothing due: wait for a notice (queued on the connection, so one
                # sent since the claim is not lost) or a 1 s safety poll.
                async for _ in listener.notifies(timeout=1.0, stop_after=1):
                    pass
        finally:
            await listener.close()


PEERS: dict[str, type[Peer]] = {p.name: p for p in (Pgqueuer, Procrastinate, Raw)}


# -- the worker process ------------------------------------------------------


async def _worker(system: str, url: str, kind: str) -> None:
    peer = PEERS[system](url)
    await peer.open()
    stop = asyncio.Event()
    starts: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    before = _cpu()
    serving = asyncio.create_task(peer.serve(kind, stop, starts))
    print(json.dumps({"ready": True}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # EOF or a line: stop
    cpu = _cpu() - before
    stop.set()
    await serving
    await peer.close()
    print(json.dumps({"cpu_s": cpu, "starts": starts}), flush=True)


class Workers:
    def __init__(self, system: str, url: str, count: int, kind: str) -> None:
        args = [sys.executable, os.path.abspath(__file__), "worker", system, url, "--kind", kind]
        self.procs = [
            subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(count)
        ]
        for proc in self.procs:
            assert proc.stdout is not None
            json.loads(proc.stdout.readline())

    def stop(self) -> tuple[float, dict[str, float]]:
        cpu, starts = 0.0, {}
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in self.procs:
            assert proc.stdout is not None
            report = json.loads(proc.stdout.readline())
            cpu += report["cpu_s"]
            starts.update(report["starts"])
            proc.wait(30)
            proc.stdout.close()
        return cpu, starts


# -- the workloads -------------------------------------------------------------


async def _until(peer: Peer, total: int, sample: Callable[[], Awaitable[None]] | None) -> None:
    deadline = time.monotonic() + DONE_TIMEOUT_S
    while await peer.completed() < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{peer.name}: {await peer.completed()} of {total} completed")
        if sample is not None:
            await sample()
            await asyncio.sleep(0.005)
        else:
            await asyncio.sleep(0.02)


async def _run(system: str, workload: str, url: str, processes: int, jobs: int) -> dict[str, Any]:
    peer = PEERS[system](url)
    await peer.open()
    try:
        await peer.install()
        loop = asyncio.get_running_loop()
        kind = LIMITED if workload == "limit2" else "noop"
        if workload == "limit2" and not peer.limits:
            return {"n/a": f"{system} has no concurrency limit above one"}
        workers = await loop.run_in_executor(None, Workers, system, url, processes, kind)
        enqueued: dict[str, float] = {}
        sampled: list[int] = []
        try:
            if workload == "pickup":
                await asyncio.sleep(0.5)  # idle first, as in life
                for _ in range(jobs):
                    at = time.time()
                    enqueued[str(await peer.enqueue(kind))] = at
                    await asyncio.sleep(0.020)
                await _until(peer, jobs, None)
                elapsed = 0.0
            else:

                async def sample() -> None:
                    sampled.append(await peer.running(kind))

                started = time.perf_counter()
                await peer.enqueue_many(kind, jobs)
                await _until(peer, jobs, sample if workload == "limit2" else None)
                elapsed = time.perf_counter() - started
        finally:
            cpu, starts = await loop.run_in_executor(None, workers.stop)
        completed = await peer.completed()
    finally:
        await peer.close()
    assert completed == jobs, (system, completed, jobs)
    if workload == "pickup":
        lags = [(starts[i] - at) * 1000 for i, at in enqueued.items()]
        assert len(lags) == jobs
        return {"p50_ms": _percentile(lags, 0.5), "p99_ms": _percentile(lags, 0.99)}
    figures: dict[str, Any] = {"jobs_per_s": jobs / elapsed}
    if workload == "limit2":
        figures["max_running"] = max(sampled) if sampled else 0
    else:
        figures["cpu_ms_per_1000"] = cpu * 1000 / jobs * 1000
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scaleout_peers.py")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("system", choices=sorted(PEERS))
    run.add_argument("workload", choices=("pickup", "limit2", "drain"))
    run.add_argument("url")
    run.add_argument("--processes", type=int, default=1)
    run.add_argument("--jobs", type=int, default=500)
    worker = sub.add_parser("worker")
    worker.add_argument("system", choices=sorted(PEERS))
    worker.add_argument("url")
    worker.add_argument("--kind", default="noop")
    args = parser.parse_args(argv)
    runner: Callable[[Coroutine[Any, Any, Any]], Any] = asyncio.run
    if args.system == "pgqueuer":  # as its ``pgq run`` command runs it
        import uvloop  # type: ignore[import-not-found]

        runner = uvloop.run
    if args.command == "worker":
        runner(_worker(args.system, args.url, args.kind))
        return 0
    figures = runner(_run(args.system, args.workload, args.url, args.processes, args.jobs))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
