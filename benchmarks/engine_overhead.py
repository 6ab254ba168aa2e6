"""What the engine alone costs per job: no store, no handler work.

Run: ``python -m benchmarks.engine_overhead [--jobs 50000] [--capacity 10]``.
A queue actor drains no-op jobs from an in-memory source into a sink that
only counts, so the figure is the engine's own work per job (a task, a cancel
scope, the claim loop, the outcome) in CPU microseconds. Compare it with the
``raw_trio`` drain of the main harness (a bare task through a limiter) and
with Callboard's drain (everything else: the store and the executor).
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import trio

from actors import Claimed, Outcome, QueueActor


class _Source:
    def __init__(self, jobs: int) -> None:
        self._jobs = collections.deque(Claimed(i, "q", None, payload=None) for i in range(jobs))

    async def claim(self, queue: str, limit: int) -> Sequence[Claimed]:
        await trio.lowlevel.checkpoint()
        return [self._jobs.popleft() for _ in range(min(limit, len(self._jobs)))]


class _Runner:
    async def run(self, job: Claimed) -> Any:
        return None


class _Sink:
    def __init__(self, target: int) -> None:
        self.target, self.count = target, 0
        self.done = trio.Event()

    def finish(self, outcome: Outcome) -> Awaitable[None]:
        self.count += 1
        if self.count == self.target:
            self.done.set()
        return trio.lowlevel.checkpoint()  # noqa: ASYNC105  # the engine awaits it


def measure(jobs: int, capacity: int) -> dict[str, float]:
    """Drain ``jobs`` no-op jobs; CPU microseconds per job and jobs per second."""

    async def main() -> dict[str, float]:
        sink = _Sink(jobs)
        actor = QueueActor(
            "q", capacity, source=_Source(jobs), runner=_Runner(), sink=sink, handles={}
        )
        wall, cpu = time.perf_counter(), time.process_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run)
            await sink.done.wait()
            actor.stop_claiming()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {"jobs": sink.count, "cpu_us_per_job": cpu / jobs * 1e6, "jobs_per_s": jobs / wall}

    return trio.run(main)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine_overhead")
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--capacity", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    runs = [measure(args.jobs, args.capacity) for _ in range(args.runs)]
    best = min(runs, key=lambda run: run["cpu_us_per_job"])
    print(
        f"engine alone, {args.jobs} no-op jobs, capacity {args.capacity}: "
        f"{best['cpu_us_per_job']:.1f} us CPU per job, {best['jobs_per_s']:,.0f} jobs/s "
        f"(best of {args.runs})"
    )


if __name__ == "__main__":
    main()
