"""huey on SQLite (``SqliteHuey``), thread workers run through its consumer API.

Runs in huey's own virtualenv. A task counts as finished when huey has stored
its result: the tasks return True so that huey keeps one (it skips None).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# huey lives only in its own virtualenv, not in the one type checks run in.
import huey  # type: ignore[import-not-found]
from huey import SqliteHuey
from huey.consumer import Consumer  # type: ignore[import-not-found]
from huey.storage import SqliteStorage  # type: ignore[import-not-found]

from benchmarks.probe import (
    JOBS,
    VERIFIED,
    Metrics,
    Step,
    StepFunction,
    percentile,
    rss_mib,
    sleepy_metrics,
    wait_until,
)

QUEUE = "default"
HOLD_QUEUE = "hold"
"""Where the memory workload's sleeping tasks wait, apart from the scheduled ones."""

SCHEDULED_DELAY_S = 3_600.0
START_TIMEOUT_S = 600.0
"""How long the memory workload waits for every worker thread to hold a task."""


def versions() -> dict[str, str]:
    return {"huey": huey.__version__, "sqlite": sqlite3.sqlite_version}


class _NormalSyncStorage(SqliteStorage):  # type: ignore[misc]  # huey's classes are Any here
    """huey's storage at synchronous=NORMAL, the durability of the limit and Callboard.

    huey leaves SQLite's default (FULL: an fsync per commit) unless told
    fsync=False, which means OFF. NORMAL makes huey faster than its default,
    so comparisons with it are conservative.
    """

    def _create_connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection = super()._create_connection()
        connection.execute("pragma synchronous = normal")
        return connection


class _Tasks:
    """A huey instance on one queue with the benchmark's tasks and their counters."""

    def __init__(self, step: Step, queue: str = QUEUE) -> None:
        self.huey = SqliteHuey(
            name=queue, filename=str(step.sqlite_path), storage_class=_NormalSyncStorage
        )
        self.lock = threading.Lock()
        self.finished = 0
        self.started_at: dict[str, float] = {}
        self.all_finished = threading.Event()
        self.holding = 0
        self.all_started = threading.Event()
        self.release = threading.Event()
        self.target = 0
        self.noop = self.huey.task(context=True, name="noop")(self._noop)
        self.sleep = self.huey.task(name="sleep")(self._sleep)
        self.hold = self.huey.task(name="hold")(self._hold)

    def _count_finished(self) -> None:
        with self.lock:
            self.finished += 1
            if self.finished == self.target:
                self.all_finished.set()

    def _noop(self, task: Any = None) -> bool:
        self.started_at[task.id] = time.perf_counter()
        self._count_finished()
        return True

    def _sleep(self, seconds: float) -> bool:
        time.sleep(seconds)
        self._count_finished()
        return True

    def _hold(self) -> bool:
        with self.lock:
            self.holding += 1
            if self.holding == self.target:
                self.all_started.set()
        self.release.wait()
        self._count_finished()
        return True

    def stored_results(self) -> int:
        return int(self.huey.result_count())

    @contextmanager
    def consumer(self, workers: int) -> Iterator[Consumer]:
        consumer = self.huey.create_consumer(workers=workers, worker_type="thread", periodic=False)
        consumer.start()
        try:
            yield consumer
        finally:
            consumer.stop(graceful=True)


def _timed_enqueue(
    step: Step, enqueue: Callable[[_Tasks, int], object], jobs: int | None = None
) -> Metrics:
    jobs = step.size("jobs") if jobs is None else jobs
    tasks = _Tasks(step)
    started, cpu = time.perf_counter(), time.process_time()
    enqueue(tasks, jobs)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    verified = int(tasks.huey.pending_count())
    return {
        JOBS: jobs,
        VERIFIED: verified,
        "elapsed_s": elapsed,
        "jobs_per_s": jobs / elapsed,
        "cpu_us_per_job": cpu / jobs * 1e6,
    }


def _enqueue_each(tasks: _Tasks, jobs: int) -> None:
    for _ in range(jobs):
        tasks.noop()


def _enqueue_map(tasks: _Tasks, jobs: int) -> None:
    # huey's one batch call; it still commits each task on its own.
    tasks.noop.map([()] * jobs)


def _enqueue_single(step: Step) -> Metrics:
    return _timed_enqueue(step, _enqueue_each)


def _enqueue_bulk(step: Step) -> Metrics:
    return _timed_enqueue(step, _enqueue_map)


def _enqueue_concurrent(step: Step) -> Metrics:
    """Producer threads, each enqueuing its share one task at a time."""
    producers = step.size("producers")
    each = max(1, step.size("jobs") // producers)

    def enqueue(tasks: _Tasks, jobs: int) -> None:
        threads = [
            threading.Thread(target=_enqueue_each, args=(tasks, each)) for _ in range(producers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return _timed_enqueue(step, enqueue, each * producers)


def _prepare_noops(step: Step) -> Metrics:
    _enqueue_map(_Tasks(step), step.size("jobs"))
    return {}


def _prepare_sleeps(step: Step) -> Metrics:
    _Tasks(step).sleep.map([(step.setting("sleep_s"),)] * step.size("jobs"))
    return {}


def _run_to_completion(step: Step) -> tuple[int, int, float]:
    """Start a consumer on the stored tasks; time until huey has stored every result."""
    jobs = step.size("jobs")
    tasks = _Tasks(step)
    tasks.target = jobs
    started = time.perf_counter()
    with tasks.consumer(step.size("concurrency")):
        tasks.all_finished.wait()
        verified = wait_until(tasks.stored_results, jobs)
        elapsed = time.perf_counter() - started
    return jobs, verified, elapsed


def _drain(step: Step) -> Metrics:
    jobs, verified, elapsed = _run_to_completion(step)
    return {JOBS: jobs, VERIFIED: verified, "elapsed_s": elapsed, "jobs_per_s": jobs / elapsed}


def _sleepy(step: Step) -> Metrics:
    _jobs, verified, elapsed = _run_to_completion(step)
    return sleepy_metrics(step, verified, elapsed)


def _latency(step: Step) -> Metrics:
    jobs, interval = step.size("jobs"), step.setting("interval_s")
    tasks = _Tasks(step)
    tasks.target = jobs
    enqueued_at: dict[str, float] = {}
    with tasks.consumer(step.size("concurrency")):
        time.sleep(step.setting("idle_s"))
        start = time.perf_counter()
        for index in range(jobs):
            time.sleep(max(0.0, start + index * interval - time.perf_counter()))
            before = time.perf_counter()
            enqueued_at[tasks.noop().id] = before
        tasks.all_finished.wait()
        verified = wait_until(tasks.stored_results, jobs)
    latencies = [tasks.started_at[task_id] - at for task_id, at in enqueued_at.items()]
    return {
        JOBS: jobs,
        VERIFIED: verified,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def _prepare_memory(step: Step) -> Metrics:
    scheduled = _Tasks(step)
    # Straight into huey's schedule table: .schedule() would route each task
    # through the queue, leaving the worker busy moving them when measured.
    for _ in range(step.size("stored")):
        scheduled.huey.add_schedule(scheduled.noop.s(delay=SCHEDULED_DELAY_S))
    _Tasks(step, queue=HOLD_QUEUE).hold.map([()] * step.size("running"))
    return {}


def _idle(step: Step) -> Metrics:
    tasks = _Tasks(step)
    with tasks.consumer(step.size("concurrency")):
        time.sleep(step.setting("settle_s"))
        rss = rss_mib()
        verified = int(tasks.huey.scheduled_count())
    return {JOBS: step.size("stored"), VERIFIED: verified, "rss_mib": rss}


def _running(step: Step) -> Metrics:
    jobs = step.size("running")
    tasks = _Tasks(step, queue=HOLD_QUEUE)
    tasks.target = jobs
    # One thread per running task: huey's thread workers run one task each.
    with tasks.consumer(jobs):
        if not tasks.all_started.wait(START_TIMEOUT_S):
            raise TimeoutError(f"only {tasks.holding} of {jobs} tasks started")
        rss = rss_mib()
        tasks.release.set()
        tasks.all_finished.wait()
        verified = wait_until(tasks.stored_results, jobs)
    return {JOBS: jobs, VERIFIED: verified, "rss_mib": rss}


STEPS: dict[str, StepFunction] = {
    "enqueue_single.enqueue": _enqueue_single,
    "enqueue_bulk.enqueue": _enqueue_bulk,
    "enqueue_concurrent.enqueue": _enqueue_concurrent,
    "drain.prepare": _prepare_noops,
    "drain.drain": _drain,
    "latency.latency": _latency,
    "sleepy.prepare": _prepare_sleeps,
    "sleepy.sleepy": _sleepy,
    "memory.prepare": _prepare_memory,
    "memory.idle": _idle,
    "memory.running": _running,
}
