"""Prometheus metrics: counters and histograms from this process's job events,
gauges per queue read from the store at scrape time.

======================================  =============  ==========================
metric                                  labels         what
======================================  =============  ==========================
callboard_jobs_enqueued_total           type           jobs stored here
callboard_jobs_started_total            type           attempts started here
callboard_jobs_finished_total           type, outcome  jobs ended here, by status
callboard_job_duration_seconds          type           start to end of an attempt
callboard_job_pickup_latency_seconds    queue          due to started
callboard_attempt_wall_seconds          type           wall time of an attempt run here
callboard_attempt_cpu_seconds           type           its handler's CPU time
callboard_attempt_peak_memory_bytes     type           process peak memory as it ended
callboard_queue_jobs                    queue, status  jobs now, all processes
callboard_queue_capacity                queue          slots in this process
callboard_queue_paused                  queue          1 if paused
======================================  =============  ==========================
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runtime.domain.models import JobEvent
from runtime.domain.status import JobStatus
from runtime.jobs.control import QueueStatistics
from runtime.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
CPU_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 900, 3600)
MEMORY_BUCKETS = tuple(float(2**n) for n in range(24, 37, 2))  # 16 MiB .. 64 GiB
_QUEUE_STATUSES = ("waiting", "running", "scheduled", "locked", "suspended")


class _QueueCollector(Collector):
    """Reports the statistics fetched just before the scrape (collect() cannot await)."""

    def __init__(self) -> None:
        self.stats: dict[str, QueueStatistics] = {}

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "callboard_queue_jobs", "Jobs in the queue by status", labels=["queue", "status"]
        )
        capacity = GaugeMetricFamily(
            "callboard_queue_capacity",
            "Jobs of the queue that may run at once here",
            labels=["queue"],
        )
        paused = GaugeMetricFamily("callboard_queue_paused", "1 if paused", labels=["queue"])
        for name, stats in sorted(self.stats.items()):
            for status in _QUEUE_STATUSES:
                jobs.add_metric([name, status], getattr(stats, status))
            capacity.add_metric([name], stats.capacity)
            paused.add_metric([name], 1 if stats.paused else 0)
        yield from (jobs, capacity, paused)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.enqueued = Counter(
            "callboard_jobs_enqueued", "Jobs stored", ["type"], registry=self.registry
        )
        self.started = Counter(
            "callboard_jobs_started", "Attempts started", ["type"], registry=self.registry
        )
        self.finished = Counter(
            "callboard_jobs_finished", "Jobs ended", ["type", "outcome"], registry=self.registry
        )
        self.duration = Histogram(
            "callboard_job_duration_seconds",
            "Run time of an attempt",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.pickup = Histogram(
            "callboard_job_pickup_latency_seconds",
            "From due to started",
            ["queue"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.wall = Histogram(
            "callboard_attempt_wall_seconds",
            "Wall time of an attempt, from its start to its end (retried ones too)",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.cpu = Histogram(
            "callboard_attempt_cpu_seconds",
            "CPU time of an attempt's handler on the event loop thread",
            ["type"],
            buckets=CPU_BUCKETS,
            registry=self.registry,
        )
        self.memory = Histogram(
            "callboard_attempt_peak_memory_bytes",
            "The process's peak resident memory when an attempt ended",
            ["type"],
            buckets=MEMORY_BUCKETS,
            registry=self.registry,
        )
        self._queues = _QueueCollector()
        self.registry.register(self._queues)

    def observe(self, event: JobEvent) -> None:
        if event.kind != "status":
            return
        if event.ended_attempt:
            self._attempt_ended(event)
        if event.revision == 1:  # a freshly stored row
            self.enqueued.labels(event.type).inc()
        elif event.status is JobStatus.RUNNING:
            self.started.labels(event.type).inc()
            if event.at is not None and event.scheduled_at is not None:
                latency = (event.at - event.scheduled_at).total_seconds()
                self.pickup.labels(event.queue).observe(max(0.0, latency))
        elif event.status.is_terminal:
            self.finished.labels(event.type, event.status.value).inc()
            if event.at is not None and event.started_at is not None:
                took = (event.at - event.started_at).total_seconds()
                self.duration.labels(event.type).observe(max(0.0, took))

    def _attempt_ended(self, event: JobEvent) -> None:
        for histogram, value in (
            (self.wall, event.wall_time),
            (self.cpu, event.cpu_time),
            (self.memory, event.peak_memory),
        ):
            if value is not None:
                histogram.labels(event.type).observe(max(0.0, value))

    async def follow(self, rt: Runtime, *, task_status: TaskStatus[None]) -> None:
        """Observe every event as it is published (see ``EventLog.follow``), until cancelled."""
        with rt.bus.subscribe(None, accept=self._tap):
            task_status.started()
            await anyio.sleep_forever()

    def _tap(self, event: JobEvent) -> bool:
        self.observe(event)
        return False

    async def render(self, rt: Runtime) -> bytes:
        self._queues.stats = await rt.statistics()
        return generate_latest(self.registry)
