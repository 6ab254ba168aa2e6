"""What every driver step receives and the measuring helpers they share.

Standard library only: drivers of peers import this from their own virtualenv.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# A step's measurements: flat numbers, merged by the runner as "<step>.<key>".
Metrics = dict[str, float]

# Every measured step reports these two keys; the runner fails a run whose
# store (or, for storeless limits, whose own counter) did not see every job.
JOBS = "jobs"
VERIFIED = "verified"

POLL_INTERVAL_S = 0.002
"""How often a driver re-counts finished jobs in the store while it waits."""

VERIFY_TIMEOUT_S = 60.0
"""How long a driver waits for the store to show what its handlers finished."""


@dataclass(frozen=True)
class Step:
    """One step of one workload for one system, as the runner asked for it."""

    store: str
    """URL of this run's fresh store (``sqlite:///path``), empty without a store."""
    params: Mapping[str, float]
    """The workload's sizes (already scaled) and settings."""

    def size(self, name: str) -> int:
        return int(self.params[name])

    def setting(self, name: str) -> float:
        return float(self.params[name])

    @property
    def sqlite_path(self) -> Path:
        prefix = "sqlite:///"
        if not self.store.startswith(prefix):
            raise ValueError(f"not a SQLite store URL: {self.store!r}")
        return Path(self.store.removeprefix(prefix))


StepFunction = Callable[[Step], Metrics]


def _proc_status_mib(field: str) -> float:
    # /proc is Linux only, like the machines these numbers are published for.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"{field} missing from /proc/self/status")


def rss_mib() -> float:
    """Resident memory of this process now, in MiB."""
    return _proc_status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Highest resident memory this process has had, in MiB."""
    return _proc_status_mib("VmHWM")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: always a value that was actually observed."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def wait_until(count: Callable[[], int], target: int, timeout: float = VERIFY_TIMEOUT_S) -> int:
    """Poll ``count`` until it reaches ``target`` or ``timeout`` passes; return the last count.

    For synchronous drivers; asynchronous ones poll with their own sleep.
    """
    deadline = time.monotonic() + timeout
    seen = count()
    while seen < target and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
        seen = count()
    return seen


def progress_budget(reporting_seconds: Sequence[float], window_s: float) -> int:
    """Store writes the progress bar allows: one per job per started ``window_s``."""
    return sum(1 + math.floor(seconds / window_s) for seconds in reporting_seconds)


def ideal_sleepy_s(jobs: int, concurrency: int, sleep_s: float) -> float:
    """Shortest possible time to run ``jobs`` sleeps ``concurrency`` at a time."""
    return math.ceil(jobs / concurrency) * sleep_s


def sleepy_metrics(step: Step, verified: int, elapsed: float) -> Metrics:
    """The ``sleepy`` figures of every system: time, and how far from the ideal."""
    jobs = step.size("jobs")
    ideal = ideal_sleepy_s(jobs, step.size("concurrency"), step.setting("sleep_s"))
    return {
        JOBS: jobs,
        VERIFIED: verified,
        "elapsed_ms": elapsed * 1000,
        "ideal_ms": ideal * 1000,
        "x_ideal": elapsed / ideal,
    }


class _SetsEvent(Protocol):
    def set(self) -> None: ...


@dataclass
class Counting:
    """What every in-process probe does as handlers report: note start times and
    count finishes, and set ``all_started`` / ``all_finished`` at ``target``.
    Subclasses give those two events their event loop's kind."""

    target: int = 0
    finished: int = 0
    started_at: dict[Any, float] = field(default_factory=dict)
    all_started: _SetsEvent = field(init=False)
    all_finished: _SetsEvent = field(init=False)

    def start(self, job_id: Any) -> None:
        self.started_at[job_id] = time.perf_counter()
        if len(self.started_at) == self.target:
            self.all_started.set()

    def finish(self) -> None:
        self.finished += 1
        if self.finished == self.target:
            self.all_finished.set()


@dataclass
class AsyncioProbe(Counting):
    """What an asyncio peer's handlers tell the step that runs them, in the same
    process: start times, a finished counter, and a release for held jobs."""

    all_finished: asyncio.Event = field(default_factory=asyncio.Event)
    all_started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
