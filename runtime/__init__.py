"""Callboard: durable background jobs on structured concurrency.

Everything a user imports is re-exported here; other modules may change.
"""

from __future__ import annotations

from runtime.context import JobContext
from runtime.errors import (
    CallboardError,
    DuplicateJobType,
    Fail,
    IllegalTransition,
    InvalidJobType,
    InvalidParams,
    JobNotFound,
    Retry,
    RuntimeNotRunning,
    Skip,
    UnknownJobType,
)
from runtime.models import Job, JobEvent
from runtime.registry import JobGroup, JobType, Queue, Registry, default_registry, job
from runtime.runtime import Runtime
from runtime.status import JobStatus
from runtime.store import WriterStatistics

__all__ = [
    "CallboardError",
    "DuplicateJobType",
    "Fail",
    "IllegalTransition",
    "InvalidJobType",
    "InvalidParams",
    "Job",
    "JobContext",
    "JobEvent",
    "JobGroup",
    "JobNotFound",
    "JobStatus",
    "JobType",
    "Queue",
    "Registry",
    "Retry",
    "Runtime",
    "RuntimeNotRunning",
    "Skip",
    "UnknownJobType",
    "WriterStatistics",
    "default_registry",
    "job",
]
