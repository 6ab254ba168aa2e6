"""Callboard across processes on one PostgreSQL: ``python -m benchmarks.scaleout``.

Worker processes (``callboard`` runtimes in subprocesses, each on its own
event loop) serve one store; this process enqueues as a client and reads the
store. Every figure counts completed jobs in the store. Workloads:

- ``pickup``: one idle worker process; one no-op job every 20 ms from this
  process; start minus enqueue time of each job (both epoch times of the
  store), p50 and p99.
- ``limit2``: a type limited to 2 at once whose jobs sleep 50 ms (ideal
  40 jobs/s); 200 jobs; 1 and 3 worker processes; the running count of the
  type is sampled every 5 ms and must never exceed 2.
- ``unrelated``: 20,000 no-op jobs, 3 processes, with and without a limited
  type merely registered.
- ``drain``: 20,000 no-op jobs with 1, 2 and 4 worker processes (concurrency
  10 each): jobs/s, and worker CPU (user + system) per 1,000 jobs.

The same workloads run for pgqueuer, procrastinate and a raw psycopg floor
(``benchmarks/scaleout_peers.py``, under each peer's own virtualenv, on a
fresh database each), interleaved with Callboard's in one run: each workload
runs every system once per round (``--rounds``), and each figure carries the
machine's one-minute load average as it ended (``load``), since the machine
may be shared. ``--systems`` picks among callboard, pgqueuer, procrastinate
and raw_psycopg.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import trio
from pydantic import BaseModel

from benchmarks.environments import Environment
from benchmarks.systems import PGQUEUER_ENVIRONMENT, PROCRASTINATE_ENVIRONMENT
from runtime import JobContext, JobStatus, Registry, Runtime

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
LIMITED = "limited2"


class Empty(BaseModel):
    pass


class Nap(BaseModel):
    seconds: float = 0.05


def _registry(limited_registered: bool) -> Registry:
    registry = Registry()

    @registry.job(name="noop", max_retries=0)
    async def noop(ctx: JobContext, params: Empty) -> None:
        return None

    if limited_registered:

        @registry.job(name=LIMITED, max_concurrency=2, max_retries=0)
        async def limited(ctx: JobContext, params: Nap) -> None:
            await trio.sleep(params.seconds)

    return registry


# -- the worker process ------------------------------------------------------


async def _worker(url: str, concurrency: int, limited_registered: bool) -> None:
    registry = _registry(limited_registered)
    queues = {"default": concurrency}
    async with Runtime(url, registry=registry, queues=queues):
        before = _cpu()
        print(json.dumps({"ready": True}), flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)  # EOF or a line: stop
        print(json.dumps({"cpu_s": _cpu() - before}), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Workers:
    """Worker subprocesses on one store."""

    def __init__(self, url: str, count: int, concurrency: int, limited: bool) -> None:
        args = [sys.executable, "-m", "benchmarks.scaleout", "worker", url]
        args += ["--concurrency", str(concurrency)] + (["--limited"] if limited else [])
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.procs = [
            subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(count)
        ]
        for proc in self.procs:
            assert proc.stdout is not None
            json.loads(proc.stdout.readline())  # ready

    def stop(self) -> float:
        """Stop them; their CPU seconds while serving, summed."""
        cpu = 0.0
        for proc in self.procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
        for proc in self.procs:
            assert proc.stdout is not None
            cpu += json.loads(proc.stdout.readline())["cpu_s"]
            proc.wait(30)
            proc.stdout.close()
        return cpu


@contextmanager
def fresh_schema(base: str) -> Iterator[str]:
    schema = f"cb_scaleout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def fresh_database(base: str) -> Iterator[str]:
    """A new database on ``base``'s server (for a peer), dropped afterwards."""
    name = f"cb_scaleout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _until_done(client: Runtime, total: int, limited_sampler: list[int] | None) -> None:
    while True:
        if limited_sampler is not None:
            limited_sampler.append(await client.count(type=LIMITED, status=JobStatus.RUNNING))
            await trio.sleep(0.005)
        else:
            await trio.sleep(0.02)
        if await client.count(status=JobStatus.COMPLETED) >= total:
            return


# -- the workloads ------------------------------------------------------------


async def pickup(base: str, jobs: int = 500, interval: float = 0.020) -> dict[str, float]:
    with fresh_schema(base) as url:
        async with Runtime(url, registry=_registry(False), workers=False) as client:
            workers = await trio.to_thread.run_sync(Workers, url, 1, 10, False)
            try:
                await trio.sleep(0.5)  # idle first, as in life
                ids = []
                for _ in range(jobs):
                    ids.append((await client.enqueue("noop")).id)
                    await trio.sleep(interval)
                await _until_done(client, jobs, None)
            finally:
                await trio.to_thread.run_sync(workers.stop)
            done = [await client.get(i) for i in ids]
    lags = [
        (j.started_at - j.created_at).total_seconds() * 1000
        for j in done
        if j.started_at is not None and j.created_at is not None
    ]
    assert len(lags) == jobs and all(j.status is JobStatus.COMPLETED for j in done)
    return {"p50_ms": _percentile(lags, 0.50), "p99_ms": _percentile(lags, 0.99)}


async def drain(
    base: str, processes: int, jobs: int, *, kind: str = "noop", limited: bool = False
) -> dict[str, float]:
    with fresh_schema(base) as url:
        async with Runtime(url, registry=_registry(limited or kind == LIMITED)) as _setup:
            pass  # the schema, before the workers race to create it
        registry = _registry(limited or kind == LIMITED)
        async with Runtime(url, registry=registry, workers=False) as client:
            workers = await trio.to_thread.run_sync(
                Workers, url, processes, 10, limited or kind == LIMITED
            )
            sampled: list[int] | None = [] if kind == LIMITED else None
            try:
                started = time.perf_counter()
                params = [{}] * jobs if kind == "noop" else [{"seconds": 0.05}] * jobs
                await client.enqueue_many(kind, params)
                await _until_done(client, jobs, sampled)
                elapsed = time.perf_counter() - started
            finally:
                cpu = await trio.to_thread.run_sync(workers.stop)
            completed = await client.count(status=JobStatus.COMPLETED)
    assert completed == jobs, (completed, jobs)
    figures = {"jobs_per_s": jobs / elapsed, "cpu_ms_per_1000": cpu * 1000 / jobs * 1000}
    if sampled is not None:
        figures["max_running"] = float(max(sampled))
    return figures


PEERS: dict[str, Environment | None] = {
    "pgqueuer": PGQUEUER_ENVIRONMENT,
    "procrastinate": PROCRASTINATE_ENVIRONMENT,
    "raw_psycopg": None,  # psycopg alone: this interpreter has it
}
SYSTEMS_DEFAULT = ("callboard", "pgqueuer", "procrastinate", "raw_psycopg")
PEERS_SCRIPT = ROOT / "benchmarks" / "scaleout_peers.py"


def peer(base: str, system: str, workload: str, processes: int, jobs: int) -> dict[str, Any]:
    """One workload of a peer, in its own interpreter on a fresh database."""
    environment = PEERS[system]
    python = sys.executable if environment is None else str(environment.ensure(_log))
    with fresh_database(base) as url:
        args = [python, str(PEERS_SCRIPT), "run", system, workload, url]
        args += ["--processes", str(processes), "--jobs", str(jobs)]
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cases(
    which: Sequence[str], drain_jobs: int, scale: float = 1.0
) -> list[tuple[str, str, int, int]]:
    """(key, workload, processes, jobs) of each figure asked for (``scale``: of
    the pickup's 500 jobs and the limit-2 workload's 200)."""
    pickups, limited = max(2, int(500 * scale)), max(2, int(200 * scale))
    cases: list[tuple[str, str, int, int]] = []
    if "pickup" in which:
        cases.append(("pickup", "pickup", 1, pickups))
    if "limit2" in which:
        cases += [(f"limit2_{n}p", "limit2", n, limited) for n in (1, 3)]
    if "unrelated" in which:
        cases += [
            (f"unrelated_3p_{k}", f"unrelated_{k}", 3, drain_jobs) for k in ("plain", "limited")
        ]
    if "drain" in which:
        cases += [(f"drain_{n}p", "drain", n, drain_jobs) for n in (1, 2, 4)]
    return cases


async def _callboard(base: str, workload: str, processes: int, jobs: int) -> dict[str, Any]:
    if workload == "pickup":
        return await pickup(base, jobs)
    if workload == "limit2":
        return await drain(base, processes, jobs, kind=LIMITED)
    if workload.startswith("unrelated_"):
        return await drain(base, processes, jobs, limited=workload.endswith("limited"))
    return await drain(base, processes, jobs)


async def main(
    base: str,
    which: Sequence[str],
    drain_jobs: int = 20_000,
    systems: Sequence[str] = SYSTEMS_DEFAULT,
    rounds: int = 1,
    scale: float = 1.0,
) -> dict[str, Any]:
    """Every case for every system, interleaved: per round, per case, each system."""
    results: dict[str, Any] = {}
    for round_no in range(rounds):
        for key, workload, processes, jobs in _cases(which, drain_jobs, scale):
            for system in systems:
                if system == "callboard":
                    figures = await _callboard(base, workload, processes, jobs)
                elif workload.startswith("unrelated_"):
                    continue  # Callboard's own question: what a registered limit costs
                else:
                    figures = await trio.to_thread.run_sync(
                        peer, base, system, workload, processes, jobs
                    )
                figures = {**figures, "load": round(os.getloadavg()[0], 2)}
                _log(f"round {round_no + 1} {key} {system}: {json.dumps(figures)}")
                results.setdefault(key, {}).setdefault(system, []).append(figures)
    return results


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaleout")
    sub = parser.add_subparsers(dest="command")
    worker = sub.add_parser("worker", help="(internal) one worker process")
    worker.add_argument("url")
    worker.add_argument("--concurrency", type=int, default=10)
    worker.add_argument("--limited", action="store_true")
    run = sub.add_parser("run", help="run the workloads and print their figures as JSON")
    run.add_argument("--store", default=os.environ.get("CALLBOARD_TEST_POSTGRES_URL", ""))
    run.add_argument("--workloads", default="pickup,limit2,unrelated,drain")
    run.add_argument("--drain-jobs", type=int, default=20_000, help="jobs per drain")
    run.add_argument("--systems", default=",".join(SYSTEMS_DEFAULT))
    run.add_argument("--rounds", type=int, default=1, help="interleaved rounds")
    run.add_argument("--scale", type=float, default=1.0, help="of pickup's and limit2's jobs")
    args = parser.parse_args(argv)
    if args.command == "worker":
        trio.run(_worker, args.url, args.concurrency, args.limited)
        return 0
    store = getattr(args, "store", "") or POSTGRES_URL_DEFAULT
    which = getattr(args, "workloads", "pickup,limit2,unrelated,drain").split(",")
    drain_jobs = getattr(args, "drain_jobs", 20_000)
    systems = getattr(args, "systems", ",".join(SYSTEMS_DEFAULT)).split(",")
    rounds, scale = getattr(args, "rounds", 1), getattr(args, "scale", 1.0)
    results = trio.run(main, store, which, drain_jobs, systems, rounds, scale)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
