"""Callboard: durable background jobs on structured concurrency.

Everything a user imports is re-exported here; other modules may change.
"""

from __future__ import annotations

from runtime.context import HookContext, JobContext
from runtime.control import QueueStatistics
from runtime.errors import (
    AmbiguousSchedule,
    CallboardError,
    DuplicateJobType,
    Fail,
    HookFailed,
    IllegalTransition,
    InvalidJobType,
    InvalidParams,
    InvalidSchedule,
    JobLost,
    JobNotFound,
    Retry,
    RuntimeNotRunning,
    ScheduleNotFound,
    Skip,
    StorageUnavailable,
    StoreUnusable,
    UnknownJobType,
    UnknownQueue,
)
from runtime.gcpause import freeze_startup_objects
from runtime.joblog import LogEntry
from runtime.models import Job, JobEvent
from runtime.registry import JobGroup, JobType, Queue, Registry, default_registry, job
from runtime.runtime import Runtime
from runtime.schedules import Schedule
from runtime.status import JobStatus
from runtime.store import WriterStatistics
from runtime.sweeper import JobRetention

__all__ = [
    "AmbiguousSchedule",
    "CallboardError",
    "DuplicateJobType",
    "Fail",
    "HookContext",
    "HookFailed",
    "IllegalTransition",
    "InvalidJobType",
    "InvalidParams",
    "InvalidSchedule",
    "Job",
    "JobContext",
    "JobEvent",
    "JobGroup",
    "JobLost",
    "JobNotFound",
    "JobRetention",
    "JobStatus",
    "JobType",
    "LogEntry",
    "Queue",
    "QueueStatistics",
    "Registry",
    "Retry",
    "Runtime",
    "RuntimeNotRunning",
    "Schedule",
    "ScheduleNotFound",
    "Skip",
    "StorageUnavailable",
    "StoreUnusable",
    "UnknownJobType",
    "UnknownQueue",
    "WriterStatistics",
    "default_registry",
    "freeze_startup_objects",
    "job",
]
