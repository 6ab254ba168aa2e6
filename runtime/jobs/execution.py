"""The executor: the engine's source, runner and sink, backed by the store.

It claims jobs through the writer (respecting locks and per-type limits),
runs handlers with a ``JobContext``, and records outcomes. Live state
(progress, warnings, log records) is written throttled by the flusher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from actors import Claimed, Outcome
from runtime.domain.clock import Clock
from runtime.domain.errors import (
    Fail,
    InvalidParams,
    JobLost,
    Skip,
    StorageUnavailable,
    UnknownJobType,
)
from runtime.domain.logs import attempt_ended, attempt_started
from runtime.domain.models import EventKind, event_from_row
from runtime.domain.status import TERMINAL, JobStatus
from runtime.domain.storable import describe, escaped, json_problem
from runtime.jobs.checkpoints import upgraded_state
from runtime.jobs.context import JobContext, RunState, Workflows, call_maybe_async
from runtime.jobs.events import EventBus
from runtime.jobs.flusher import Flusher, take_logs
from runtime.jobs.logs import enter_job, leave_job
from runtime.jobs.outcomes import decide
from runtime.jobs.registry import JobType, Registry
from runtime.jobs.resources import metered, peak_memory
from runtime.jobs.sync_handlers import ThreadLimiters, run_sync_handler
from runtime.jobs.wakeups import Wakeups
from runtime.store import Notices, Store
from runtime.store.claim import Claim, ClaimResult, TypeLimit
from runtime.store.ops import CheckIn, Finish, FinishResult, SaveCheckpoint

if TYPE_CHECKING:  # imported only when tracing is on (it imports opentelemetry)
    from runtime.jobs.tracing import JobTracing

log = logging.getLogger("callboard.executor")


def _ignore_settled(result: Any, error: BaseException | None) -> None:
    """The settle callback of a claim nobody waits for any more."""


class StepRunner(Protocol):
    """Runs the jobs that have steps (``runtime.workflows.steps``) in place of a
    handler, and settles their steps' records as an attempt ends."""

    async def run(self, executor: Executor, state: RunState) -> Any: ...

    def ended(self, state: RunState, outcome: Outcome, values: dict[str, Any], now: float) -> None:
        """Amend ``values`` (what the finish records) for a job with steps."""


class Executor:
    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        bus: EventBus,
        clock: Clock,
        worker_id: str,
        flusher: Flusher,
        on_status: Callable[[dict[str, Any]], None],
        on_rate_limited: Callable[[str, float], None],
        blocked_for: Callable[[], float] | None = None,
        capacities: Callable[[], dict[str, int]] = dict,
        wakeups: Wakeups | None = None,
        on_slot_freed: Callable[[str, str], None] | None = None,
        steps: StepRunner | None = None,
        workflows: Workflows | None = None,
        tracing: JobTracing | None = None,
    ) -> None:
        self._store, self._registry, self._bus = store, registry, bus
        self.clock = clock
        self._worker = worker_id
        self.flusher = flusher
        self._on_status = on_status  # the runtime wakes queues and timers from here
        self._on_rate_limited = on_rate_limited
        self._blocked_for = blocked_for  # the loop watchdog's, if it runs
        self._wakeups = wakeups  # what a finish tells other processes (PostgreSQL)
        self._notify = store.channel is not None and wakeups is not None
        self._on_slot_freed = on_slot_freed
        self._steps = steps
        self.workflows = workflows  # ctx.spawn, ctx.wait_children (runtime.workflows)
        self._tracing = tracing
        # Jobs whose claim committed but has not reached its queue actor yet,
        # with the event a control request waits on, if one does.
        self._handing: dict[Any, anyio.Event | None] = {}
        self._threads = ThreadLimiters(capacities)  # sync handlers' threads, per queue
        self._sync: dict[str, bool] = {}  # per type: is its handler a plain def (checked once)

    # -- JobSource ---------------------------------------------------------

    async def claim(self, queue: str, limit: int) -> Sequence[Claimed]:
        now = self.clock.now()
        pending = self._store.submit(Claim(queue, limit, self._worker, now, self._limits()))
        pending.on_settled(self._claim_settled)
        try:
            result: ClaimResult = await pending.wait()
        except StorageUnavailable:  # the writer logged the fault: the next poll retries
            return []
        except Exception:  # a conflicting claim elsewhere: the next wake-up or poll retries
            log.exception("claim on queue %r failed", queue)
            return []
        finally:
            if not pending.is_settled:
                # Cancelled first (a shutdown): no queue actor will hear of these
                # jobs, so none may wait for their handover (their lease lapses).
                pending.on_settled(_ignore_settled)
            # The queue actor makes their handles as this returns, before it
            # next yields: whoever waits in ``handed_over`` wakes after that.
            elif pending.error is None and pending.result is not None:
                for row in pending.result.rows:
                    waiter = self._handing.pop(row["id"], None)
                    if waiter is not None:
                        waiter.set()
        if result.retry_at is not None:
            self._on_rate_limited(queue, result.retry_at)
        claimed = []
        for row in result.rows:
            progress = row["progress"] or 0.0
            errors = list(row["errors"] or ())
            state = RunState(row, progress, errors=errors, progress_from=progress, since=now)
            claimed.append(Claimed(row["id"], queue, row["timeout"], payload=state))
            self._publish_status(row)
        for parked in result.parked:
            self._publish_status(parked)
        return claimed

    def _claim_settled(self, result: ClaimResult | None, error: BaseException | None) -> None:
        """Note the jobs a claim took as it commits, before anyone hears of them: a
        cancel or suspend committed after it may reach us before the claimer does."""
        if error is None and result is not None:
            for row in result.rows:
                self._handing[row["id"]] = None

    async def handed_over(self, job_id: Any) -> bool:
        """Wait until a job claimed here is handed to its queue actor, if its claim
        has committed and the claimer has not heard yet; whether it waited."""
        if job_id not in self._handing:
            return False
        waiter = self._handing[job_id]
        if waiter is None:
            waiter = self._handing[job_id] = anyio.Event()
        await waiter.wait()
        return True

    def _limits(self) -> dict[str, TypeLimit]:
        """Every limited type, whatever its queue: a job may be enqueued on
        another queue than its type's, and its type's limits hold there too."""
        return {
            t.name: TypeLimit(t.max_concurrency, t.rate)
            for t in self._registry.types()
            if t.max_concurrency is not None or t.rate_limit is not None
        }

    # -- JobRunner ---------------------------------------------------------

    async def run(self, job: Claimed) -> Any:
        state: RunState = job.payload
        row = state.row  # the loop watchdog reads it from this frame
        token = enter_job(row)  # not a context manager: this runs for every job
        try:
            if self._tracing is None:
                return await self._run(state)
            with self._tracing.attempt(row) as state.span:
                return await self._run(state)
        finally:
            leave_job(token)

    async def _run(self, state: RunState) -> Any:
        row = state.row
        if row.get("steps") is not None and self._steps is not None:
            return await self._steps.run(self, state)
        try:
            job_type = self._registry.get(row["type"])
            params = job_type.validate(row["params"])
        except (UnknownJobType, InvalidParams) as err:
            raise Fail(f"cannot run job: {err}") from err
        row["checkpoint"] = upgraded_state(job_type, row["checkpoint"], row["checkpoint_version"])
        ctx = JobContext(self, state)
        if job_type.should_run is not None and not await call_maybe_async(job_type.should_run, ctx):
            raise Skip(f"should_run of job type {job_type.name!r} returned False")
        return await self.call_handler(job_type, ctx, params, state)

    async def call_handler(
        self, job_type: JobType, ctx: JobContext, params: Any, state: RunState
    ) -> Any:
        """Run ``job_type``'s handler with ``ctx`` (a job's, or a step's of it)."""
        row = state.row
        handler: Callable[[Any, Any], Any] = job_type.handler  # is_sync tells which
        sync = self._sync.get(job_type.name)
        if sync is None:
            sync = self._sync[job_type.name] = job_type.is_sync
        if sync:
            limiter = self._threads(row["queue"])
            return await run_sync_handler(handler, ctx, params, limiter=limiter)
        work = handler(ctx, params)
        # An async def's is a coroutine (the type test first: an ABC's is slow);
        # other awaitables go unmetered.
        if type(work) is CoroutineType or isinstance(work, Coroutine):
            result = await metered(work, state)
        else:
            result = await work
        if self._blocked_for is not None:  # told if the handler overran its deadline
            state.blocked = self._blocked_for()
        return result

    # -- OutcomeSink -------------------------------------------------------

    def finish(self, outcome: Outcome) -> None:
        state: RunState = outcome.job.payload
        self.flusher.forget(state)
        now = self.clock.now()
        values = decide(outcome, state.row, now, blocked=state.blocked)
        if self._steps is not None and state.row.get("steps") is not None:
            self._steps.ended(state, outcome, values, now)
        values.update(
            progress=values.get("progress", state.progress),
            progress_details=state.details,
            eta=values.get("eta"),
            errors=state.errors or None,
            updated_at=now,
            resumed=False,
            # The attempt's resources ride on the update that records its end.
            wall_time=now - state.row["started_at"],
            cpu_time=state.cpu_time,
            peak_memory=peak_memory(),
        )
        if values["status"] not in TERMINAL:  # a StrEnum set: plain values match
            # The job's record will tell of its next attempt: store this one's
            # start and end. A job that ends keeps its worker's name, and its
            # record tells both (see runtime.domain.logs).
            values["worker_id"] = None
            self._log_start(state)
            state.logs.append(_ending(state.row, values, now))
        if self._tracing is not None:
            # A job told before it started never ran: its attempt's span is empty.
            span = state.span if state.span is not None else self._tracing.start_attempt(state.row)
            self._tracing.ended(span, values, outcome.error)
        logs = take_logs([state])
        row = state.row
        limited = self._limited_queue(row["type"])
        pending = self._store.submit(
            Finish(
                state.job_id,
                self._worker,
                values,
                state.row["lock_key"],
                logs=logs,
                log_limit=self.flusher.log_limit,
                tenant_id=state.row["tenant_id"],
            ),
            self._finish_notices(row, values["status"], limited) if self._notify else None,
        )
        woken = False
        if limited is not None and self._on_slot_freed is not None:
            # Its type's slot frees in this commit: a held-back job's claim asked
            # now joins the same commit, after it (as an enqueue's claim does).
            self._on_slot_freed(row["queue"], limited)
            woken = True
        # The job's task need not wait: the writer commits everything queued
        # before the runtime stops, and announces the outcome as it settles
        # (telling nobody of a freed slot if its type has none to free).
        pending.on_settled(partial(self._finished, state, slot_woken=woken or limited is None))
        return None

    def _finished(
        self,
        state: RunState,
        result: FinishResult | None,
        error: BaseException | None,
        *,
        fallback: bool = False,
        slot_woken: bool = False,
    ) -> None:
        """Announce a recorded outcome (in the writer, as the commit settles)."""
        if error is not None or result is None:
            log.error("the outcome of job %s was not recorded", state.job_id, exc_info=error)
            if error is not None and not fallback:
                self._fail_unrecorded(state, error)
            return
        if not result.done:
            log.warning("job %s was taken from this worker before it finished", state.job_id)
            return
        revision = result.revision or state.row["revision"] + 1
        row = state.row
        if self._bus.wants_status(state.job_id, row.get("tenant_id"), row.get("parent_id")):
            self._publish_status(
                {**row, **result.values, "revision": revision, "ended_attempt": True}
            )
        else:  # the runtime's wake-ups need only these
            status = result.values["status"]
            self._on_status(
                {
                    "id": state.job_id,
                    "status": status,
                    "queue": row["queue"],
                    "type": row["type"],
                    # It left a run: a held-back job of a limited type may start
                    # (unless its queues were woken as the finish was submitted).
                    "started_at": None if slot_woken else row["started_at"],
                }
                if status != "scheduled"
                else {**row, **result.values, "revision": revision}
            )
        for released in result.released:
            self._publish_status(released)
        if row["lock_key"] is not None and self._on_slot_freed is not None:
            # Jobs of its key that another runtime's claim left waiting rather
            # than parked (runtime.store.claim, Claim._park_on_locks) may start.
            self._on_slot_freed(row["queue"], row["queue"])
        for dependent in result.dependents:  # released or skipped by this ending
            self._publish_status(dependent)

    def _limited_queue(self, type_name: str) -> str | None:
        """The queue of ``type_name`` if its concurrency is limited, else None."""
        try:
            job_type = self._registry.get(type_name)
        except UnknownJobType:
            return None
        return job_type.queue if job_type.max_concurrency is not None else None

    def _finish_notices(
        self, row: dict[str, Any], status: str, limited: str | None
    ) -> Notices | None:
        """What the end of this run tells other processes (a freed slot of a
        limited type, a released lock key, an immediate retry), if anything."""
        assert self._wakeups is not None
        return self._wakeups.for_finish(row["queue"], status, limited, row["lock_key"])

    def _fail_unrecorded(self, state: RunState, error: BaseException) -> None:
        """Fail a job whose outcome the store refused, rather than leave it running
        until its lease lapses: only the columns that say so, no log records."""
        now = self.clock.now()
        message = f"the outcome could not be stored: {type(error).__name__}: {error}"
        values = {
            "status": JobStatus.FAILED.value,
            "finished_at": now,
            "updated_at": now,
            "error": escaped(message)[0],
            "traceback": None,
        }
        pending = self._store.submit(
            Finish(
                state.job_id,
                self._worker,
                values,
                state.row["lock_key"],
                tenant_id=state.row["tenant_id"],
            )
        )
        pending.on_settled(partial(self._finished, state, fallback=True))

    # -- progress, checkpoints, warnings, logs --------------------------------

    def progress_changed(self, state: RunState, now: float) -> None:
        if self._bus.wants(state.job_id, state.row.get("tenant_id")):
            self._bus.publish(event_from_row(_live(state), now, "progress"))
        self.flusher.mark(state)

    def warned(self, state: RunState, message: str) -> None:
        if self._bus.wants(state.job_id, state.row.get("tenant_id")):
            self._publish(_live(state), "warning", message)
        self.flusher.mark(state)

    def logged(
        self, state: RunState, level: int, message: str, extra: dict[str, Any] | None
    ) -> None:
        now = self.clock.now()
        self._log_start(state)
        state.logs.append(
            {"job_id": state.job_id, "at": now, "level": level, "message": message, "extra": extra}
        )
        self.flusher.mark(state)

    def _log_start(self, state: RunState) -> None:
        """Store the attempt's start before its first stored record, so that a
        reader finds the records of the attempt after its start."""
        if not state.start_logged:
            state.start_logged = True
            row = state.row
            state.logs.append(
                attempt_started(row["id"], row["attempt"], self._worker, row["started_at"])
            )

    async def save_checkpoint(
        self, state: RunState, value: Any, *, version: int | None = None
    ) -> None:
        """Store ``value`` as the job's checkpoint, of ``version`` (its type's if None)."""
        problem = json_problem(value, nul=True)
        if problem is not None:
            raise ValueError(f"the checkpoint cannot be stored: {describe('state', problem)}")
        now = self.clock.now()
        if version is None:
            version = self._registry.get(state.row["type"]).version
        stored = await self._store.write(
            SaveCheckpoint(state.job_id, self._worker, value, version, now)
        )
        if not stored:
            raise JobLost(state.job_id)
        # Replaced, not changed: ``ctx.job`` keeps the row as it was claimed.
        state.row = {**state.row, "checkpoint": value, "checkpoint_version": version}
        if self._bus.wants(state.job_id, state.row.get("tenant_id")):
            self._publish(_live(state), "checkpoint")

    async def check_in(self, state: RunState, message: str) -> None:
        now = self.clock.now()
        revision = await self._store.write(CheckIn(state.job_id, self._worker, message, now))
        if revision is None:
            return
        state.row = {**state.row, "check_in": message, "check_in_at": now, "revision": revision}
        if self._bus.wants(state.job_id, state.row.get("tenant_id")):
            self._publish(_live(state), "check_in", message)

    # -- events ----------------------------------------------------------------

    def _publish_status(self, row: dict[str, Any]) -> None:
        self._on_status(row)
        if self._bus.wants_status(row["id"], row.get("tenant_id"), row.get("parent_id")):
            self._bus.publish(event_from_row(row, self.clock.now()))

    def _publish(self, row: dict[str, Any], kind: EventKind, message: str | None = None) -> None:
        self._bus.publish(event_from_row(row, self.clock.now(), kind, message))


def _live(state: RunState) -> dict[str, Any]:
    """The job's row with its live progress: ``state.row`` holds the claimed
    progress, which the throttled flusher stores but never writes back."""
    row = state.row
    return {**row, "progress": state.progress, "progress_details": state.details, "eta": state.eta}


def _ending(row: dict[str, Any], values: dict[str, Any], now: float) -> dict[str, Any]:
    """The log record of how an attempt ended, when the job goes on."""
    status = values["status"]
    retry_in = None
    if status in ("scheduled", "waiting") and "scheduled_at" in values:
        retry_in = values["scheduled_at"] - now
    return attempt_ended(row["id"], row["attempt"], status, values.get("error"), now, retry_in)
