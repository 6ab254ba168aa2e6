"""The figures the report shows, what each is compared with, and the bars of
issue 3 as issue 22 restated them (against huey, the limits and the floor)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

LimitKind = Literal["store", "engine", "combined"]
"""Which limit a figure is held against: the store alone (raw_sqlite, raw_psycopg), the
engine alone (raw_trio), or both in series, 1 / (1/store + 1/engine)."""

Against = Literal["value", "peer", "limit", "floor"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Bar:
    """A target for Callboard's figure, alone or as a ratio to a peer or the limit."""

    text: str
    against: Against
    op: Literal[">=", "<=", "<"]
    threshold: float
    peer: str = ""
    """For ``against="peer"``: the peer's system name."""

    def passes(self, measured: float) -> bool:
        return _OPERATORS[self.op](measured, self.threshold)


@dataclass(frozen=True)
class Metric:
    workload: str
    key: str
    """``<step>.<name>`` in a run's merged measurements."""
    label: str
    unit: str = ""
    limit: LimitKind | None = None
    bars: tuple[Bar, ...] = ()


METRICS: tuple[Metric, ...] = (
    Metric(
        workload="enqueue_single",
        key="enqueue.jobs_per_s",
        label="throughput",
        unit="jobs/s",
        limit="store",
        bars=(Bar(">= 0.7x huey", "peer", ">=", 0.7, peer="huey"),),
    ),
    Metric(
        workload="enqueue_single",
        key="enqueue.cpu_us_per_job",
        label="CPU per job",
        unit="us",
        bars=(Bar("<= 1.6x floor", "floor", "<=", 1.6),),
    ),
    Metric(
        workload="enqueue_concurrent",
        key="enqueue.jobs_per_s",
        label="throughput",
        unit="jobs/s",
        bars=(Bar(">= 1.5x huey", "peer", ">=", 1.5, peer="huey"),),
    ),
    Metric(
        workload="enqueue_bulk",
        key="enqueue.jobs_per_s",
        label="throughput",
        unit="jobs/s",
        limit="store",
        bars=(Bar(">= 18% of limit", "limit", ">=", 0.18),),
    ),
    Metric(
        workload="drain",
        key="drain.jobs_per_s",
        label="throughput",
        unit="jobs/s",
        limit="combined",
        bars=(
            Bar(">= 2x huey", "peer", ">=", 2.0, peer="huey"),
            Bar(">= 30% of limit", "limit", ">=", 0.30),
        ),
    ),
    Metric(workload="drain", key="drain.cpu_us_per_job", label="CPU per job", unit="us"),
    Metric(
        workload="latency",
        key="latency.p50_ms",
        label="p50 enqueue to start",
        unit="ms",
        limit="engine",
        bars=(Bar("< 2 ms", "value", "<", 2.0),),
    ),
    Metric(
        workload="latency",
        key="latency.p99_ms",
        label="p99 enqueue to start",
        unit="ms",
        limit="engine",
        bars=(Bar("< 10 ms", "value", "<", 10.0),),
    ),
    Metric(
        workload="sleepy",
        key="sleepy.elapsed_ms",
        label="time",
        unit="ms",
        limit="engine",
        bars=(Bar("<= 1.2x raw trio", "limit", "<=", 1.2),),
    ),
    Metric(workload="sleepy", key="sleepy.x_ideal", label="time / ideal", unit="x", limit="engine"),
    Metric(workload="progress", key="progress.elapsed_s", label="time", unit="s"),
    Metric(
        workload="progress",
        key="progress.writes_per_call",
        label="store writes per progress call",
    ),
    Metric(
        workload="progress",
        key="progress.writes_per_window",
        label="store writes per job per 250 ms",
        bars=(Bar("<= 1", "value", "<=", 1.0),),
    ),
    Metric(
        workload="memory",
        key="idle.rss_mib",
        label="RSS idle, jobs stored",
        unit="MiB",
        limit="store",
        bars=(Bar("< 150 MiB", "value", "<", 150.0),),
    ),
    Metric(
        workload="memory",
        key="running.rss_mib",
        label="RSS running sleepers",
        unit="MiB",
        limit="engine",
        bars=(Bar("< 300 MiB", "value", "<", 300.0),),
    ),
)
