"""Callboard: durable background jobs on structured concurrency.

Everything a user imports is re-exported here and listed once, sorted, in
``__all__`` (docs/python-api.md describes each name; a test keeps the two
equal). The modules below may change. The facade (``runtime.runtime``) sits
at the top of this folder; the concepts, the store and the shared domain
live in its subfolders (see docs/design.md, "Where things live").
"""

from __future__ import annotations

from runtime import _names  # noqa: F401  (first: a user's actors.py must not hide the engine)
from runtime.domain.errors import (
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
    SchemaNotCurrent,
    Skip,
    StorageUnavailable,
    StoreUnusable,
    UnknownJobType,
    UnknownQueue,
    WaitForChildren,
)
from runtime.domain.logs import LogEntry
from runtime.domain.models import Job, JobEvent, JobResult
from runtime.domain.status import JobStatus
from runtime.domain.steps import JobStep, StepStatus
from runtime.gcpause import freeze_startup_objects
from runtime.jobs.context import HookContext, JobContext
from runtime.jobs.control import QueueStatistics
from runtime.jobs.events import SubscriberTooSlow
from runtime.jobs.registry import JobGroup, JobType, Queue, Registry, default_registry, job
from runtime.jobs.sweeper import JobRetention
from runtime.jobs.sync_handlers import SyncJobContext
from runtime.jobs.transactional import enqueue_in
from runtime.runtime import Runtime
from runtime.schedules.model import Schedule
from runtime.store import WriterStatistics
from runtime.sync_client import SyncClient
from runtime.workflows.chords import Chord
from runtime.workflows.step_specs import Step
from runtime.workflows.steps import StepContext

__all__ = [
    "AmbiguousSchedule",
    "CallboardError",
    "Chord",
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
    "JobResult",
    "JobRetention",
    "JobStatus",
    "JobStep",
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
    "SchemaNotCurrent",
    "Skip",
    "Step",
    "StepContext",
    "StepStatus",
    "StorageUnavailable",
    "StoreUnusable",
    "SubscriberTooSlow",
    "SyncClient",
    "SyncJobContext",
    "UnknownJobType",
    "UnknownQueue",
    "WaitForChildren",
    "WriterStatistics",
    "default_registry",
    "enqueue_in",
    "freeze_startup_objects",
    "job",
]
