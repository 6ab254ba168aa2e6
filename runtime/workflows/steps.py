"""Running multi-step jobs: the executor hands a job with steps to
:class:`StepRunner`, which runs the steps in order, each with its own type's
handler, context, retries and timeout.

Every step's start is written (:class:`runtime.store.step_ops.SaveSteps`)
before its handler runs, and carries the end of the step before it (a step
that ends the job, or fails it, is written at once), so a crash, a rescue,
a suspend or a retry resumes at the step that had not ended, with its
checkpoint, and never runs a step whose end was written (the job's
checkpoint belongs to the step under way: the write that ends a step clears
it). A step that waits for a retry with a delay does not hold its slot: the
job is rescheduled for then (without spending one of its own attempts) and
the next claim goes on at that step.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from pydantic import BaseModel

from actors import Ended, Outcome
from runtime.domain.errors import (
    Fail,
    InvalidParams,
    JobLost,
    Retry,
    Skip,
    UnknownJobType,
    WaitForChildren,
)
from runtime.domain.models import Job, JobId, JobResult, event_from_row
from runtime.domain.status import TERMINAL, JobStatus
from runtime.domain.steps import StepStatus
from runtime.domain.storable import describe, escaped, json_problem
from runtime.jobs.checkpoints import upgraded_state
from runtime.jobs.context import JobContext, RunState, call_maybe_async
from runtime.jobs.events import EventBus
from runtime.jobs.execution import Executor
from runtime.jobs.progress import estimate_eta, make_report
from runtime.jobs.registry import JobType, Registry
from runtime.store import Store
from runtime.store.step_ops import SaveSteps

Record = dict[str, Any]
_SCALARS = frozenset({type(None), str, int, float, bool})


class StepRescheduled(Exception):
    """A step failed with tries left and a delay: the job waits ``scheduled`` for it."""

    def __init__(self, delay: float, message: str) -> None:
        super().__init__(message)
        self.delay = delay


class StepContext(JobContext):
    """What a step's handler sees as ``ctx``: the job's context, but its
    progress is the step's (the job's combines its steps'), ``attempt`` counts
    the step's tries, and ``checkpoint`` saves the step's state."""

    def __init__(
        self, executor: Executor, state: RunState, records: list[Record], index: int, version: int
    ) -> None:
        super().__init__(executor, state)
        self._steps_executor = executor
        self._records = records
        self._index = index
        self._version = version
        self._spawned: list[uuid.UUID] = []  # this try's spawns, in order

    @property
    def step(self) -> int:
        """This step's index in the job's steps, from 0."""
        return self._index

    @property
    def attempt(self) -> int:
        return int(self._records[self._index]["attempts"])

    async def progress(
        self,
        percent: float | None = None,
        *,
        fraction: float | None = None,
        current: float | None = None,
        total: float | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """As :meth:`JobContext.progress`, for this step: the job's progress is
        its ended steps' share plus this step's share of the next."""
        record = self._records[self._index]
        report = make_report(
            percent=percent,
            fraction=fraction,
            current=current,
            total=total,
            bytes_done=bytes_done,
            bytes_total=bytes_total,
            details=details,
            previous=record["progress"],
        )
        record["progress"] = report.percent
        state = self._state
        now = self._steps_executor.clock.now()
        state.progress = combined_progress(self._records)
        state.details = report.details or state.details
        state.eta = estimate_eta(now, state.since, state.progress_from, state.progress)
        self._steps_executor.progress_changed(state, now)

    async def spawn_many(
        self,
        job_type: Any,
        params: Iterable[Any],
        *,
        keys: Sequence[str | None] | None = None,
        **options: Any,
    ) -> list[Job]:
        spawned = await super().spawn_many(job_type, params, keys=keys, **options)
        self._spawned.extend(job.id for job in spawned)
        return spawned

    async def wait_children(self, children: Iterable[JobId | Job] | None = None) -> list[JobResult]:
        """As :meth:`JobContext.wait_children`, but with no ``children`` given,
        the children this step spawned (not the earlier steps')."""
        return await super().wait_children(self._spawned if children is None else children)

    def _spawn_key(self, key: str) -> str:
        # Each step's spawns are its own: the same key (or place in the order)
        # in another step names another child.
        return f"{key}@step{self._index}"

    async def checkpoint(self, state: Any) -> None:
        """As :meth:`JobContext.checkpoint`: this step's state, which a resumed
        job hands back to this step (the next step starts without one)."""
        await self._steps_executor.save_checkpoint(self._state, state, version=self._version)


def combined_progress(records: list[Record]) -> float:
    """The job's percent: ended steps count whole, the others by their own progress."""
    total = 0.0
    for record in records:
        done = StepStatus(record["status"]).is_done
        total += 100.0 if done else record["progress"]
    return total / len(records)


@dataclass(slots=True)
class _Run:
    """One attempt of a multi-step job, as the runner goes through its steps."""

    executor: Executor
    state: RunState
    records: list[Record]
    # A step that ended but whose record is not written yet: the write that
    # starts the next step carries it (one commit instead of two), and no
    # handler runs before that write is durable.
    unwritten: int | None = None


class StepRunner:
    """The executor's :class:`runtime.jobs.execution.StepRunner`."""

    def __init__(self, *, registry: Registry, store: Store, bus: EventBus, worker_id: str) -> None:
        self._registry, self._store, self._bus = registry, store, bus
        self._worker = worker_id
        self._live: dict[uuid.UUID, _Run] = {}  # running jobs', by id

    async def run(self, executor: Executor, state: RunState) -> Any:
        run = _Run(executor, state, [dict(record) for record in state.row["steps"]])
        self._live[state.job_id] = run
        for index, record in enumerate(run.records):
            if not StepStatus(record["status"]).is_done:
                await self._run_step(run, index)
        if run.unwritten is not None:
            await self._save(run, run.unwritten)
        return [record["result"] for record in run.records]

    async def _run_step(self, run: _Run, index: int) -> None:
        record = run.records[index]
        try:
            step_type = self._registry.get(record["type"])
            params = step_type.validate(record["params"])
        except (UnknownJobType, InvalidParams) as err:
            await self._failed(run, index, f"cannot run step: {err}")
            return
        state = run.state
        row = state.row
        state.row = {
            **row,
            "checkpoint": upgraded_state(step_type, row["checkpoint"], row["checkpoint_version"]),
        }
        while True:
            state.spawned = (
                0  # a try's spawns are keyed from 0 again: a rerun gets its children back
            )
            ctx = StepContext(run.executor, state, run.records, index, step_type.version)
            if step_type.should_run is not None:
                if run.unwritten is not None:  # its own code: after the last end is durable
                    await self._save(run, run.unwritten)
                if not await call_maybe_async(step_type.should_run, ctx):
                    why = f"should_run of job type {step_type.name!r} returned False"
                    await self._ended(run, index, StepStatus.SKIPPED, error=why)
                    return
            record.update(
                status=StepStatus.RUNNING.value,
                attempts=record["attempts"] + 1,
                started_at=run.executor.clock.now(),
                finished_at=None,
            )
            await self._save(run, index)
            try:
                result = await self._call(run, step_type, ctx, params)
            except (JobLost, WaitForChildren):
                raise  # waiting for children: the job gives its slot back, the step goes on after
            except Skip as err:
                await self._ended(run, index, StepStatus.SKIPPED, str(err))
                return
            except Fail as err:
                await self._failed(run, index, str(err))
                return
            except Exception as err:
                message = _message(err)
                if record["attempts"] > record["max_retries"]:
                    await self._failed(run, index, message)
                    return
                delay = err.after if isinstance(err, Retry) and err.after is not None else None
                delay = record["retry_delay"] if delay is None else delay
                record.update(status=StepStatus.RETRYING.value, error=escaped(message)[0])
                await self._save(run, index)
                if delay > 0:
                    raise StepRescheduled(delay, _retry_note(record, index, message)) from err
                continue
            value, problem = _storable(result)
            if problem is not None:
                await self._failed(run, index, problem)
                return
            record["result"] = value
            await self._ended(run, index, StepStatus.COMPLETED)
            return

    async def _call(self, run: _Run, step_type: JobType, ctx: StepContext, params: Any) -> Any:
        executor, state = run.executor, run.state
        if step_type.timeout is None:
            return await executor.call_handler(step_type, ctx, params, state)
        try:
            with anyio.fail_after(step_type.timeout):
                return await executor.call_handler(step_type, ctx, params, state)
        except TimeoutError:
            raise TimeoutError(f"step timed out after {step_type.timeout:g}s") from None

    async def _failed(self, run: _Run, index: int, message: str) -> None:
        """The step failed for good: a mandatory one fails the job."""
        record = run.records[index]
        if not record["mandatory"]:
            await self._ended(run, index, StepStatus.FAILED, message)
            JobContext(run.executor, run.state).warn(_failure_note(record, index, message))
            return
        for later in run.records[index + 1 :]:
            later["status"] = StepStatus.SKIPPED.value
        await self._ended(run, index, StepStatus.FAILED, message, write=True)
        raise Fail(_failure_note(record, index, message))

    async def _ended(
        self,
        run: _Run,
        index: int,
        status: StepStatus,
        error: str | None = None,
        *,
        write: bool = False,
    ) -> None:
        """Record the step's end: written at once if ``write``, else with the
        next step's start (or as the job's last write of its steps)."""
        record = run.records[index]
        record.update(status=status.value, finished_at=run.executor.clock.now())
        if status is StepStatus.COMPLETED:
            record["progress"] = 100.0
        if error is not None:
            record["error"] = escaped(error)[0]
        if run.unwritten is not None:  # a skipped step after an ended one: both now
            await self._save(run, run.unwritten)
        run.unwritten = index
        # The next step starts without this one's checkpoint (the write clears it).
        run.state.row = {**run.state.row, "checkpoint": None, "checkpoint_version": None}
        if write:
            await self._save(run, index)

    async def _save(self, run: _Run, index: int) -> None:
        """Write the steps' records (durable when this returns) and announce the
        step at ``index``, and before it the ended step the write carries."""
        state, records = run.state, run.records
        now = run.executor.clock.now()
        ended, run.unwritten = run.unwritten, None
        state.progress = combined_progress(records)
        stored = [dict(record) for record in records]
        op = SaveSteps(state.job_id, self._worker, stored, state.progress, now, ended is not None)
        revision = await self._store.write(op)
        if revision is None:
            raise JobLost(state.job_id)
        state.row = {**state.row, "steps": stored, "revision": revision}
        if ended is not None and ended != index:
            self._announce(state, records, ended, now)
        self._announce(state, records, index, now)

    def _announce(self, state: RunState, records: list[Record], index: int, now: float) -> None:
        row = state.row
        if not self._bus.wants(state.job_id, row.get("tenant_id")):
            return
        record = records[index]
        live = {**row, "progress": state.progress, "progress_details": state.details}
        message = f"step {index + 1}/{len(records)} {record['type']}: {record['status']}"
        if record["error"] is not None and record["status"] != StepStatus.RUNNING.value:
            message += f": {record['error']}"
        event = event_from_row(live, now, "step", message)
        self._bus.publish(event.model_copy(update={"step": index, "step_status": record["status"]}))

    # -- the end of an attempt ----------------------------------------------------

    def ended(self, state: RunState, outcome: Outcome, values: dict[str, Any], now: float) -> None:
        """Amend what the executor records as the attempt ends: a step's retry
        reschedules the job without spending its attempt; a step under way when
        the job stops is recorded so (suspended, canceled, failed)."""
        run = self._live.pop(state.job_id, None)
        if outcome.ended is Ended.RAISED and isinstance(outcome.error, StepRescheduled):
            values.clear()
            values.update(
                status=JobStatus.SCHEDULED.value,
                scheduled_at=now + outcome.error.delay,
                attempt=max(0, state.row["attempt"] - 1),
                error=escaped(str(outcome.error))[0],
                traceback=None,
            )
            return
        if run is None:
            return
        records = run.records
        changed = run.unwritten is not None
        if changed:  # an ended step's record goes with the finish, its checkpoint cleared
            values.update(checkpoint=None, checkpoint_version=None)
        status = values["status"]
        under_way = {StepStatus.RUNNING.value, StepStatus.RETRYING.value}
        waiting = isinstance(outcome.error, WaitForChildren)
        for record in records:
            if waiting and record["status"] in under_way:
                # The step waits for its children: still under way, and the
                # try that spawned them is not one of its retries.
                record["attempts"] = max(0, record["attempts"] - 1)
                changed = True
            elif record["status"] in under_way:
                record["status"] = _stopped(outcome, status)
                if status in TERMINAL:
                    record["finished_at"] = now
                if outcome.ended is Ended.INTERRUPTED:  # shutdown: the try does not count
                    record["attempts"] = max(0, record["attempts"] - 1)
                changed = True
            elif record["status"] == StepStatus.PENDING.value and status in TERMINAL:
                record["status"] = StepStatus.SKIPPED.value
                changed = True
        if changed:
            values["steps"] = records


def _stopped(outcome: Outcome, status: str) -> str:
    """The status of the step under way as its job stops with ``status``."""
    if status == JobStatus.SUSPENDED.value:
        return StepStatus.SUSPENDED.value
    if status == JobStatus.CANCELED.value or outcome.ended is Ended.CANCELED:
        return StepStatus.CANCELED.value
    if status in TERMINAL:
        return StepStatus.FAILED.value
    return StepStatus.PENDING.value  # run again: interrupted, or the job retries


def _message(error: BaseException) -> str:
    if isinstance(error, Retry):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _storable(value: Any) -> tuple[Any, str | None]:
    """The step's result as stored, or why it cannot be."""
    if type(value) not in _SCALARS and isinstance(value, BaseModel):
        try:
            value = value.model_dump(mode="json")
        except Exception as err:
            return None, f"the result cannot be stored: model_dump failed: {err}"
    problem = json_problem(value, nul=True) if value is not None else None
    if problem is not None:
        return None, f"the result cannot be stored: {describe('result', problem)}"
    return value, None


def _failure_note(record: Record, index: int, message: str) -> str:
    kind = "mandatory" if record["mandatory"] else "optional"
    return f"{kind} step {index + 1} ({record['type']}) failed: {message}"


def _retry_note(record: Record, index: int, message: str) -> str:
    return f"step {index + 1} ({record['type']}) failed, will retry: {message}"
