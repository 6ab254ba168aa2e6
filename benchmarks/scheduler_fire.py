"""How long the scheduler takes to fire 10,000 schedules due in the same second.

Run: ``python -m benchmarks.scheduler_fire [--schedules 10000] [--runs 3]``.
For each kind of trigger it fills a fresh SQLite file with schedules (through
the same definition code as ``add_schedule``, inserted in one statement for
speed) whose next fire time is one instant a moment ahead, starts a
scheduler on the real clock, and measures from that instant until every
schedule has made its job (committed, linked to its slot). Kinds:

* ``interval``: every schedule "1 hour", each anchored at its own start;
* ``cron``: every schedule the same daily cron expression (one shared trigger);
* ``cron-zones``: daily cron expressions in 400 time zones (400 triggers).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
import zoneinfo
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from runtime import JobContext, Registry, Runtime
from runtime.schedules.model import dump_trigger
from runtime.schedules.scheduler import Scheduler
from runtime.schedules.spec import CronTrigger, IntervalTrigger, Trigger
from runtime.store.engine import open_engine
from runtime.store.tables import jobs, schedules

KINDS = ("interval", "cron", "cron-zones")
LEAD_SECONDS = 2.0  # schedules fall due this long after the scheduler starts


class Empty(BaseModel):
    pass


ZONES = sorted(zoneinfo.available_timezones())[:400]


def _trigger(kind: str, index: int, due: datetime) -> Trigger:
    """A trigger with a slot at ``due``."""
    if kind == "interval":
        return IntervalTrigger(every="1 hour", start=due - timedelta(hours=index))
    zone = "UTC" if kind == "cron" else ZONES[index % len(ZONES)]
    local = due.astimezone(zoneinfo.ZoneInfo(zone))
    expression = f"{local.minute} {local.hour} * * * {local.second}"
    return CronTrigger(expression=expression, tz=zone)


def fill(url: str, kind: str, count: int, due: float) -> None:
    """``count`` schedules of ``kind``, all due at epoch ``due``."""
    engine = open_engine(url)
    moment = datetime.fromtimestamp(due, UTC)
    rows: list[dict[str, Any]] = []
    for index in range(count):
        trigger = _trigger(kind, index, moment)
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "name": f"bench-{index}",
                "job_type": "noop",
                "params": {},
                "trigger": dump_trigger(trigger),
                "tz": getattr(trigger, "tz", "UTC"),
                "overlap": "allow",
                "misfire": "run_once",
                "max_catch_up": 100,
                "paused": False,
                "last_fire_at": None,
                "next_fire_at": due,
                "last_job_id": None,
                "created_at": due - 3600,
                "updated_at": due - 3600,
                "tenant_id": None,
                "revision": 1,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(schedules), rows)
    engine.dispose()


def _latest_due(conn: Connection) -> float:
    return float(conn.execute(select(func.max(schedules.c.next_fire_at))).scalar_one())


def _count_jobs(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


async def measure(url: str, registry: Registry, count: int) -> dict[str, float]:
    async with Runtime(url, registry=registry, workers=False) as rt:
        done = trio.Event()
        made: list[int] = [0]

        def count_jobs(rows: Sequence[Any]) -> None:  # called once their commit is durable
            made[0] += len(rows)
            if made[0] >= count:
                done.set()

        scheduler = Scheduler(
            store=rt.store, registry=registry, clock=rt.clock, on_jobs=count_jobs, recheck=0
        )
        due = await rt.store.read(_latest_due)
        loaded = time.perf_counter()
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            load_seconds = time.perf_counter() - loaded
            await trio.sleep(max(0.0, due - rt.clock.now()))
            started = time.perf_counter()
            await done.wait()
            fired_seconds = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        stored = await rt.store.read(_count_jobs)
        transactions = rt.writer_statistics().transactions
    assert stored == count, f"{stored} jobs for {count} schedules"
    return {"load": load_seconds, "fire": fired_seconds, "transactions": transactions}


def run(kind: str, count: int) -> dict[str, float]:
    registry = Registry()

    @registry.job(name="noop")
    async def noop(ctx: JobContext, params: Empty) -> None:
        pass

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        due = _next_whole_second(time.time() + LEAD_SECONDS + count / 20_000)
        fill(url, kind, count, due)
        return trio.run(measure, url, registry, count)


def _next_whole_second(epoch: float) -> float:
    return float(int(epoch) + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kind", choices=KINDS, action="append")
    args = parser.parse_args()
    for kind in args.kind or KINDS:
        results = [run(kind, args.schedules) for _ in range(args.runs)]
        fire = statistics.median(r["fire"] for r in results)
        load = statistics.median(r["load"] for r in results)
        print(
            f"{kind:>10}: {args.schedules} schedules fired in {fire:.3f} s "
            f"(median of {args.runs}; {args.schedules / fire:,.0f} jobs/s; "
            f"initial load {load:.3f} s; {results[0]['transactions']:.0f} transactions)"
        )


if __name__ == "__main__":
    main()
