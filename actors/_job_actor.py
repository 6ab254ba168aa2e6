"""The job actor: runs one job's handler inside a cancel scope.

Its mailbox (:class:`JobHandle`) takes control requests from outside; a
request cancels the scope, so every ``await`` in the handler is an
interruption point and its ``finally`` blocks run.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from actors import _native as native
from actors._messages import CONTROL_ENDINGS, Claimed, Control, Ended, Outcome
from actors._native import CancelScope
from actors._protocols import JobRunner


class JobHandle:
    """The mailbox of one running job."""

    __slots__ = ("_scope", "control", "job")

    def __init__(self, job: Claimed) -> None:
        self.job = job
        self.control: Control | None = None
        self._scope: CancelScope | None = None

    def tell(self, control: Control) -> bool:
        """Deliver a control request; the first one wins, except that a cancel
        overrides a suspend. Returns whether it was taken."""
        overrides = control is Control.CANCEL and self.control is Control.SUSPEND
        if self.control is not None and not overrides:
            return False
        self.control = control
        if self._scope is not None:
            self._scope.cancel()
        return True

    def _attach(self, scope: CancelScope) -> None:
        self._scope = scope
        if self.control is not None:  # told before it started
            scope.cancel()


async def run_job(
    job: Claimed,
    runner: JobRunner,
    handle: JobHandle,
    *,
    cancel_scope: Callable[[float], CancelScope] | None = None,
    clock: Callable[[], float] | None = None,
) -> Outcome:
    """Run ``job`` to an outcome. Never raises for the handler's errors, nor
    for a cancellation it ran into that was not the engine's.

    ``cancel_scope`` and ``clock`` are the running loop's (see ``_native``);
    a queue actor looks them up once rather than for every job.
    """
    now = clock or native.clock()
    started = now()
    deadline = started + job.timeout if job.timeout else math.inf
    returned, value = False, None
    error: BaseException | None = None
    with (cancel_scope or native.cancel_scope_factory())(deadline) as scope:
        handle._attach(scope)
        try:
            if handle.control is None:  # else told before it started: it never runs
                value = await runner.run(job)
                returned = True
        except Exception as exc:  # the handler's failure is an outcome, not a crash
            error = exc
        except BaseException as exc:
            # A cancellation that is not ours or the engine's (under asyncio, the
            # handler awaited something cancelled elsewhere) is the handler's
            # failure too. Anything else propagates: this scope ends our own
            # cancellation, and the engine's goes on up.
            if scope.cancel_called or not native.is_stray_cancellation(exc):
                raise
            error = exc
    ended = now()
    duration = ended - started
    if returned:
        # A deadline that passed while the handler never yielded could not fire.
        how = Ended.OVERRAN if ended >= deadline else Ended.RETURNED
        return Outcome(job, how, value=value, duration=duration)
    if scope.cancel_called and handle.control is not None:
        return Outcome(job, CONTROL_ENDINGS[handle.control], error=error, duration=duration)
    if scope.cancel_called and ended >= deadline:
        return Outcome(job, Ended.TIMED_OUT, error=error, duration=duration)
    return Outcome(job, Ended.RAISED, error=error, duration=duration)
