"""What a 10,000-member chord costs: its enqueue, and its fan-in.

Run: ``python -m benchmarks.chord [--members 10000] [--runs 3] [--store sqlite]``.
For each store (SQLite on the repository's disk, PostgreSQL at
``CALLBOARD_BENCH_POSTGRES_URL``), on a fresh store per run:

* ``enqueue``: a client runtime (no workers) stores the chord,
  ``rt.enqueue_chord`` (members of a no-op type, one callback);
* ``fan-in``: a runtime with workers (one queue, capacity 10) starts, runs
  every member, and runs the callback, which reads every member's result
  a page of 1,000 at a time; timed from the start until the callback
  completed;

and beside them, in the same run, the same members without a callback
(``enqueue_many``, then the time to run them all: until the last one
completed, which starts among the last ten), so the ratios show what
the chord adds: the dependency rows on enqueue, the count-down on every
member's end and the callback's reads on fan-in.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import trio
from pydantic import BaseModel

from benchmarks.stores import StoreKind, StoreUnavailable, check, provision
from runtime import JobContext, JobStatus, Registry, Runtime

CAPACITY = 10
QUIET: dict[str, Any] = {"loop_watchdog": None, "sweep_interval": 10_000.0}


class Item(BaseModel):
    i: int


class Nothing(BaseModel):
    pass


def registry() -> Registry:
    registry = Registry()

    @registry.job(name="member")
    async def member(ctx: JobContext, params: Item) -> int:
        return params.i

    @registry.job(name="callback")
    async def callback(ctx: JobContext, params: Nothing) -> int:
        total = 0
        async for result in ctx.iter_dependency_results(page=1000):
            total += result.result
        return total

    return registry


async def _enqueue(url: str, members: int, chord: bool) -> tuple[float, Any]:
    items = [{"i": i} for i in range(members)]
    async with Runtime(url, registry=registry(), workers=False, **QUIET) as rt:
        started = time.perf_counter()
        if chord:
            made = await rt.enqueue_chord("member", items, "callback")
            waited_for: Any = made.callback.id
        else:
            waited_for = (await rt.enqueue_many("member", items))[-1].id
        return time.perf_counter() - started, waited_for


async def _drain(url: str, members: int, last: Any, chord: bool) -> float:
    started = time.perf_counter()
    async with Runtime(url, registry=registry(), queues={"default": CAPACITY}, **QUIET) as rt:
        done = await rt.wait(last, timeout=3600)
        assert done.status is JobStatus.COMPLETED, done.error
        if chord:
            assert done.result == members * (members - 1) // 2
        else:  # the last one started among the last ten: the others end with it
            while True:
                if await rt.count(status="completed") == members:
                    break
                await trio.sleep(0.01)
        return time.perf_counter() - started


def run(kind: StoreKind, members: int, chord: bool) -> dict[str, float]:
    with provision(kind) as url:
        enqueue, last = trio.run(_enqueue, url, members, chord)
        drain = trio.run(_drain, url, members, last, chord)
    return {"enqueue": enqueue, "drain": drain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), action="append")
    args = parser.parse_args()
    for kind in args.store or ("sqlite", "postgresql"):
        try:
            check(kind)
        except StoreUnavailable as err:
            print(f"{kind}: skipped ({err})")
            continue
        figures: dict[str, dict[str, float]] = {}
        for label, chord in (("chord", True), ("plain", False)):
            results = [run(kind, args.members, chord) for _ in range(args.runs)]
            figures[label] = {
                name: statistics.median(r[name] for r in results) for name in ("enqueue", "drain")
            }
        chord_, plain = figures["chord"], figures["plain"]
        print(
            f"{kind:>10}: {args.members} members (median of {args.runs}): "
            f"enqueue chord {chord_['enqueue']:.3f} s, plain {plain['enqueue']:.3f} s "
            f"(x{chord_['enqueue'] / plain['enqueue']:.2f}); "
            f"fan-in until the callback completed {chord_['drain']:.3f} s, "
            f"plain drain {plain['drain']:.3f} s (x{chord_['drain'] / plain['drain']:.2f})"
        )


if __name__ == "__main__":
    main()
