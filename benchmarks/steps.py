"""What a step of a multi-step job costs next to a job of its own.

Run: ``python -m benchmarks.steps [--steps 1000] [--per-job 10] [--runs 3]``.
Each workload runs on a fresh SQLite file, side by side in one process, and
reports microseconds of wall time per unit of work (a no-op job or step):

- ``chain``: one sequence of ``--per-job`` no-op units run in order, by hand
  (enqueue a job, wait for it, enqueue the next) against one multi-step job
  of as many steps; repeated until ``--steps`` units ran.
- ``drain``: ``--steps`` no-op jobs enqueued in one call and drained ten at a
  time, against ``--steps`` no-op steps as multi-step jobs of ``--per-job``
  steps each.

A step writes its record as it starts and as it ends (two commits, which
the writer groups with its neighbours'); a job is enqueued, claimed and
finished. Prints one JSON line per run, then the median of each figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime, Step

registry = Registry()


class Empty(BaseModel):
    pass


@registry.job(name="noop", max_retries=0)
async def noop(ctx: JobContext, params: Empty) -> None:
    return None


async def _chain(rt: Runtime, steps: int, per_job: int, as_steps: bool) -> int:
    units = 0
    while units < steps:
        if as_steps:
            job = await rt.enqueue_steps([Step("noop")] * per_job)
            await rt.wait(job.id, timeout=600)
        else:
            for _ in range(per_job):
                await rt.wait((await rt.enqueue("noop", {})).id, timeout=600)
        units += per_job
    return units


async def _drain(rt: Runtime, steps: int, per_job: int, as_steps: bool) -> int:
    if as_steps:
        plan = [Step("noop")] * per_job
        jobs = [await rt.enqueue_steps(plan) for _ in range(steps // per_job)]
    else:
        jobs = await rt.enqueue_many("noop", [{}] * steps)
    for job in jobs:
        await rt.wait(job.id, timeout=600)
    return len(jobs) * (per_job if as_steps else 1)


async def _time(url: str, workload: str, steps: int, per_job: int, as_steps: bool) -> float:
    run = _chain if workload == "chain" else _drain
    async with Runtime(url, registry=registry, queues={"default": 10}) as rt:
        wall = time.perf_counter()
        units = await run(rt, steps, per_job, as_steps)
        return (time.perf_counter() - wall) / units * 1e6


def measure(steps: int, per_job: int, folder: Path) -> dict[str, Any]:
    """One run of every workload: microseconds per unit, and step/job ratios."""
    out: dict[str, Any] = {"steps": steps, "per_job": per_job}
    for workload in ("chain", "drain"):
        for as_steps, label in ((False, "jobs"), (True, "steps")):
            url = f"sqlite:///{folder / f'{workload}-{label}.db'}"
            out[f"{workload}_{label}_us"] = round(
                trio.run(_time, url, workload, steps, per_job, as_steps), 1
            )
        out[f"{workload}_ratio"] = round(
            out[f"{workload}_steps_us"] / out[f"{workload}_jobs_us"], 2
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.steps")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--per-job", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            runs.append(measure(args.steps, args.per_job, Path(folder)))
        print(json.dumps(runs[-1]), flush=True)
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(json.dumps({"median": median}))


if __name__ == "__main__":
    main()
