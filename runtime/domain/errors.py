"""Every error Callboard raises on purpose.

::

    CallboardError
     |- UnknownJobType          no job type has that name
     |- DuplicateJobType        a name registered twice in one registry
     |- InvalidParams           params failed the type's pydantic model
     |- InvalidJobType          a handler or its options cannot be used
     |- JobNotFound             no job has that id (for this tenant)
     |- IllegalTransition       the job's status does not allow the change
     |- UnknownQueue            no queue has that name
     |- InvalidSchedule         a schedule's trigger or options cannot be used
     |- ScheduleNotFound        no schedule has that id or name (for this tenant)
     |- AmbiguousSchedule       a name several tenants' schedules share, given without a tenant
     |- HookFailed              an on_suspend/on_resume hook raised: nothing changed
     |- RuntimeNotRunning       a Runtime used outside ``async with``
     |- StorageUnavailable      the database cannot be written or reached now (retry later)
     |- StoreUnusable           the database cannot be opened at start-up
     `- HandlerSignal           raised by handlers to steer their job
         |- Retry               try again (after a delay)
         |- Fail                fail now, without retries
         |- Skip                end the job as skipped
         `- WaitForChildren     give the slot back until the children awaited end

Each class's docstring is its default message.
"""

from __future__ import annotations

from typing import Any


class CallboardError(Exception):
    """A Callboard error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class UnknownJobType(CallboardError, LookupError):
    """No job type has that name."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f"; known types: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown job type {name!r}{hint}")
        self.name = name


class DuplicateJobType(CallboardError, ValueError):
    """A job type with that name is already registered."""


class InvalidJobType(CallboardError, TypeError):
    """The handler or its options cannot be used as a job type."""


class InvalidParams(CallboardError, ValueError):
    """The params do not match the job type's model."""

    def __init__(self, job_type: str, errors: list[dict[str, Any]], message: str = "") -> None:
        fields = "; ".join(_describe(e) for e in errors)
        super().__init__(message or f"invalid params for job type {job_type!r}: {fields}")
        self.job_type = job_type
        self.errors = errors


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())) or "params"
    return f"{where}: {error.get('msg', 'invalid')}"


class JobNotFound(CallboardError, LookupError):
    """No job has that id."""

    def __init__(self, job_id: object) -> None:
        super().__init__(f"no job with id {str(job_id)!r}")
        self.job_id = job_id


class IllegalTransition(CallboardError):
    """The job's current status does not allow this change."""

    def __init__(self, job_id: object, current: str, action: str) -> None:
        super().__init__(f"cannot {action} job {job_id}: its status is {current!r}")
        self.job_id = job_id
        self.current = current
        self.action = action


class UnknownQueue(CallboardError, LookupError):
    """No queue has that name."""


class InvalidSchedule(CallboardError, ValueError):
    """The schedule's trigger or options cannot be used."""


class ScheduleNotFound(CallboardError, LookupError):
    """No schedule has that id or name."""

    def __init__(self, schedule_id: object) -> None:
        super().__init__(f"no schedule with id or name {str(schedule_id)!r}")
        self.schedule_id = schedule_id


class AmbiguousSchedule(CallboardError):
    """Schedules of several tenants have that name: name the schedule by its id."""

    def __init__(self, name: str, tenants: int) -> None:
        super().__init__(
            f"schedules of {tenants} tenants are named {name!r}; use its id to say which"
        )
        self.name = name
        self.tenants = tenants


class HookFailed(CallboardError):
    """A job type's on_suspend or on_resume hook raised; nothing was changed."""


class JobLost(CallboardError):
    """The running job is no longer this worker's: its lease lapsed and it was
    rescued (it may run elsewhere now). Raised by ``ctx.checkpoint()``, which
    stored nothing; the handler should stop, and its outcome is not recorded."""

    def __init__(self, job_id: object) -> None:
        super().__init__(f"job {job_id} is no longer run by this worker; nothing was stored")
        self.job_id = job_id


class RuntimeNotRunning(CallboardError, RuntimeError):
    """The Runtime is not running: use it inside ``async with Runtime(...)``."""


class StorageUnavailable(CallboardError):
    """The database cannot take this write or read now (disk full, I/O error,
    connection lost); nothing was stored. Retry later."""

    RETRY_AFTER_DEFAULT = 5

    def __init__(self, reason: str, *, retry_after: float = RETRY_AFTER_DEFAULT) -> None:
        super().__init__(f"storage unavailable: {reason}")
        self.reason = reason
        self.retry_after = retry_after


class StoreUnusable(CallboardError):
    """The database cannot be opened: read-only, not a database, corrupt or
    unreachable. The message says what and how to fix it."""


class HandlerSignal(CallboardError):
    """Raised by a job handler to steer its job."""


class Retry(HandlerSignal):
    """The handler asked for another attempt."""

    def __init__(self, after: float | None = None, reason: str | None = None) -> None:
        super().__init__(reason or "retry requested")
        self.after = after


class Fail(HandlerSignal):
    """The handler failed the job without retries."""


class Skip(HandlerSignal):
    """The handler skipped the job."""


class WaitForChildren(HandlerSignal):
    """The job waits for its children: its run ends ``blocked`` and it runs again
    (from its checkpoint) when they have ended. Raised by ``ctx.wait_children``;
    a handler lets it through."""


class SchemaNotCurrent(StoreUnusable):
    """The store's schema is not the one this version needs, and it was told
    not to migrate (or the store is newer than this version)."""
