"""The small frozen messages that travel between actors and their owner."""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any


class Control(enum.Enum):
    """A request sent to a running job actor's mailbox.

    The first request a job receives wins, so a job that is being cancelled
    cannot also be suspended halfway; only a cancel overrides a suspend.
    """

    CANCEL = "cancel"
    SUSPEND = "suspend"
    INTERRUPT = "interrupt"  # graceful shutdown ran out of grace


class Ended(enum.Enum):
    """How a job actor's run ended, as seen by the engine."""

    RETURNED = "returned"
    RAISED = "raised"
    TIMED_OUT = "timed_out"
    # The handler returned after its deadline: it never gave the loop a chance
    # to cancel it (it blocked the event loop). Its result is not trusted.
    OVERRAN = "overran"
    CANCELED = "canceled"
    SUSPENDED = "suspended"
    INTERRUPTED = "interrupted"


CONTROL_ENDINGS = {
    Control.CANCEL: Ended.CANCELED,
    Control.SUSPEND: Ended.SUSPENDED,
    Control.INTERRUPT: Ended.INTERRUPTED,
}


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job a queue actor claimed and will run.

    ``payload`` is opaque to the engine: the owner's runner gets it back.
    """

    id: Hashable
    queue: str
    timeout: float | None = None
    payload: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one run of a job."""

    job: Claimed
    ended: Ended
    value: Any = None
    error: BaseException | None = None
    duration: float = 0.0
