"""How long pruning 1,000,000 finished jobs takes, and what it does to pickup latency.

Run: ``python -m benchmarks.sweep_impact [--rows 1000000]``. It fills a fresh
SQLite file with finished jobs (directly, for speed), then measures the
enqueue-to-start latency of a steady trickle of jobs, first alone and then
while ``rt.prune()`` deletes every finished row.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import trio
from pydantic import BaseModel

from runtime import JobContext, JobRetention, Registry, Runtime
from runtime.store.engine import open_engine
from runtime.store.tables import jobs

FILL_BATCH = 50_000


class Empty(BaseModel):
    pass


def fill(url: str, rows: int) -> None:
    engine = open_engine(url)
    old = time.time() - 90 * 86400
    base = {
        "type": "noop",
        "group": "default",
        "queue": "default",
        "status": "completed",
        "priority": 0,
        "params": {},
        "attempt": 1,
        "max_retries": 0,
        "retry_delay": 0.0,
        "scheduled_at": old,
        "created_at": old,
        "started_at": old,
        "finished_at": old,
        "updated_at": old,
        "revision": 3,
        "progress": 100.0,
        "resumed": False,
    }
    with engine.begin() as conn:
        for start in range(0, rows, FILL_BATCH):
            batch = [{**base, "id": uuid.uuid4()} for _ in range(min(FILL_BATCH, rows - start))]
            conn.execute(jobs.insert(), batch)
    engine.dispose()


async def trickle(rt: Runtime, started: dict[uuid.UUID, float], count: int) -> list[float]:
    sent: dict[uuid.UUID, float] = {}
    for _ in range(count):
        t = time.perf_counter()
        job = await rt.enqueue("noop", {})
        sent[job.id] = t
        await trio.sleep(0.01)
    for job_id in sent:
        await rt.wait(job_id, timeout=60)
    return sorted((started[i] - sent[i]) * 1000 for i in sent)


def summary(latencies: list[float]) -> str:
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return f"p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms"


async def main(rows: int, samples: int) -> None:
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'sweep.db'}"
    t0 = time.perf_counter()
    fill(url, rows)
    print(f"filled {rows:,} finished jobs in {time.perf_counter() - t0:.1f} s")
    started: dict[uuid.UUID, float] = {}
    registry = Registry()

    @registry.job(name="noop", params=Empty)
    async def noop(ctx: JobContext, params: Empty) -> None:
        started[ctx.id] = time.perf_counter()

    async with Runtime(url, registry=registry, sweep_interval=1e9) as rt:
        print("alone:        ", summary(await trickle(rt, started, samples)))
        started.clear()
        result: dict[str, float] = {}

        async def prune() -> None:
            t = time.perf_counter()
            counts = await rt.prune(JobRetention(completed=86400))
            result["seconds"] = time.perf_counter() - t
            result["deleted"] = sum(counts.values())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(prune)
            during = await trickle(rt, started, samples)
        print("during prune: ", summary(during))
        print(f"pruned {int(result['deleted']):,} rows in {result['seconds']:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    trio.run(main, args.rows, args.samples)
