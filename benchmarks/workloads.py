"""The workloads of issue 3: what each one asks of a system, at scale 1.

Sizes (job counts, calls) are multiplied by ``--scale``; settings (sleeps,
intervals, concurrency) are not, so a small scale keeps each workload's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PREPARE = "prepare"
"""A step that stores jobs before the measured step, in its own process, so
the measured process starts as a fresh worker would."""


@dataclass(frozen=True)
class Workload:
    name: str
    summary: str
    steps: tuple[str, ...]
    sizes: Mapping[str, int]
    settings: Mapping[str, float]

    def params(self, scale: float) -> dict[str, float]:
        """The step parameters at ``scale``; every size stays at least 1."""
        scaled = {name: max(1, round(size * scale)) for name, size in self.sizes.items()}
        return {**scaled, **self.settings}

    @property
    def measured_steps(self) -> tuple[str, ...]:
        return tuple(step for step in self.steps if step != PREPARE)


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        name="enqueue_single",
        summary="5,000 enqueues, one at a time, each durable before the next",
        steps=("enqueue",),
        sizes={"jobs": 5_000},
        settings={},
    ),
    Workload(
        name="enqueue_concurrent",
        summary="10,000 jobs from 50 producers in one process (tasks, or threads), each "
        "enqueuing its 200 one at a time, each durable before its next",
        steps=("enqueue",),
        sizes={"jobs": 10_000},
        settings={"producers": 50},
    ),
    Workload(
        name="enqueue_bulk",
        summary="20,000 jobs in one batch call",
        steps=("enqueue",),
        sizes={"jobs": 20_000},
        settings={},
    ),
    Workload(
        name="drain",
        summary="20,000 stored jobs; start workers with concurrency 10; time until all finished",
        steps=(PREPARE, "drain"),
        sizes={"jobs": 20_000},
        settings={"concurrency": 10},
    ),
    Workload(
        name="latency",
        summary="idle worker, concurrency 10; one enqueue every 10 ms for 500 jobs",
        steps=("latency",),
        sizes={"jobs": 500},
        # The worker idles this long first, so pollers have backed off as they would in life.
        settings={"concurrency": 10, "interval_s": 0.010, "idle_s": 0.5},
    ),
    Workload(
        name="sleepy",
        summary="2,000 stored jobs that each sleep 10 ms, concurrency 100 (ideal 200 ms)",
        steps=(PREPARE, "sleepy"),
        sizes={"jobs": 2_000},
        settings={"concurrency": 100, "sleep_s": 0.010},
    ),
    Workload(
        name="progress",
        summary="200 stored jobs each reporting progress 1,000 times, concurrency 10",
        steps=(PREPARE, "progress"),
        sizes={"jobs": 200, "calls": 1_000},
        settings={"concurrency": 10, "window_s": 0.25},
    ),
    Workload(
        name="memory",
        summary="100,000 scheduled jobs stored: RSS of an idle worker; and of one "
        "running 10,000 sleeping jobs at once",
        steps=(PREPARE, "idle", "running"),
        sizes={"stored": 100_000, "running": 10_000},
        # The idle worker settles this long before its memory is read.
        settings={"concurrency": 10, "settle_s": 0.5},
    ),
)

WORKLOADS_BY_NAME: Mapping[str, Workload] = {workload.name: workload for workload in WORKLOADS}
