"""The structured-concurrency engine of Callboard.

It knows nothing of SQL or HTTP: its owner hands it a :class:`JobSource`, a
:class:`JobRunner` and an :class:`OutcomeSink`, and it runs queue actors and
job actors inside one task group. It must never import ``runtime``.
"""

from __future__ import annotations

from actors._job_actor import JobHandle, run_job
from actors._messages import Claimed, Control, Ended, Outcome
from actors._native import (
    WOULD_BLOCK,
    LoopEvent,
    Receiver,
    Sender,
    checkpoints,
    event_factory,
    memory_channel,
)
from actors._native import clock as loop_clock
from actors._protocols import JobRunner, JobSource, OutcomeSink
from actors._queue_actor import (
    CLAIM_BATCH_DEFAULT,
    POLL_INTERVAL_DEFAULT,
    QueueActor,
    check_capacity,
)
from actors._supervisor import GRACE_PERIOD_DEFAULT, ShutdownReport, Supervisor
from actors._timer import DueTimer, Ticker

__all__ = [
    "CLAIM_BATCH_DEFAULT",
    "GRACE_PERIOD_DEFAULT",
    "POLL_INTERVAL_DEFAULT",
    "WOULD_BLOCK",
    "Claimed",
    "Control",
    "DueTimer",
    "Ended",
    "JobHandle",
    "JobRunner",
    "JobSource",
    "LoopEvent",
    "Outcome",
    "OutcomeSink",
    "QueueActor",
    "Receiver",
    "Sender",
    "ShutdownReport",
    "Supervisor",
    "Ticker",
    "check_capacity",
    "checkpoints",
    "event_factory",
    "loop_clock",
    "memory_channel",
    "run_job",
]
