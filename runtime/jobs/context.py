"""What a handler sees: ``JobContext``."""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.domain.clock import Clock
from runtime.domain.models import Job, JobId, JobResult
from runtime.domain.storable import escaped
from runtime.jobs.logs import JobLogger
from runtime.jobs.progress import estimate_eta, make_report


@dataclass(slots=True)
class RunState:
    """The live state of one running attempt, kept in memory and flushed throttled."""

    row: dict[str, Any]
    progress: float = 0.0
    details: dict[str, Any] | None = None
    eta: float | None = None
    errors: list[str] = field(default_factory=list)
    progress_from: float = 0.0  # progress when this attempt started (for the ETA)
    since: float = 0.0
    logs: list[dict[str, Any]] = field(default_factory=list)  # not yet stored
    start_logged: bool = False  # the attempt's start record is among its logs
    queued: bool = False  # on its way to the flusher, or waiting there to be written
    ended: bool = False  # its outcome is written: the flusher has nothing more of it
    cpu_time: float = 0.0  # the handler's, this attempt (runtime.jobs.resources.metered)
    blocked: float | None = None  # how long the loop had been blocked as the handler returned
    spawned: int = 0  # ctx.spawn calls so far in this run: the key of the next one
    span: Any = None  # the attempt's OpenTelemetry span, when tracing is on

    @property
    def job_id(self) -> uuid.UUID:
        return self.row["id"]  # type: ignore[no-any-return]


class Workflows(Protocol):
    """What a context's workflow calls use (``runtime.workflows.children``,
    handed to the executor by the runtime)."""

    async def spawn(
        self,
        state: RunState,
        job_type: Any,
        items: Sequence[Any],
        keys: Sequence[str],
        options: dict[str, Any],
    ) -> list[Job]: ...

    async def wait_children(
        self, state: RunState, children: Sequence[JobId] | None
    ) -> list[JobResult]: ...

    async def dependency_results(
        self, state: RunState, after: uuid.UUID | None, limit: int
    ) -> list[JobResult]: ...


class Reporter(Protocol):
    """Where a context reports what its handler does: the executor
    (:class:`runtime.jobs.execution.Executor`), or a fake in tests."""

    clock: Clock
    workflows: Workflows | None

    def progress_changed(self, state: RunState, now: float) -> None: ...

    def warned(self, state: RunState, message: str) -> None: ...

    def logged(
        self, state: RunState, level: int, message: str, extra: dict[str, Any] | None
    ) -> None: ...

    async def save_checkpoint(self, state: RunState, value: Any) -> None: ...

    async def check_in(self, state: RunState, message: str) -> None: ...


class JobContext:
    """Passed to every ``async def`` handler as ``ctx``: report progress, save
    checkpoints, warn, log. (A plain ``def`` handler gets its sync facade,
    :class:`runtime.jobs.sync_handlers.SyncJobContext`.)"""

    def __init__(self, executor: Reporter, state: RunState, job: Job | None = None) -> None:
        self._executor = executor
        self._state = state
        self._job = job
        # ``job`` snapshots this; the executor replaces ``state.row`` rather than change it.
        self._claimed = state.row if job is None else None
        self._log: JobLogger | None = None

    @property
    def job(self) -> Job:
        """The job as it was claimed (built on first use: most handlers never look)."""
        if self._job is None:
            self._job = Job.from_row(self._claimed or self._state.row)
        return self._job

    @property
    def log(self) -> JobLogger:
        """A logger whose records are also kept with the job (``rt.logs(id)``)."""
        if self._log is None:
            row = self._state.row
            self._log = JobLogger(row["id"], row["type"], self.keep_log)
        return self._log

    def keep_log(self, level: int, message: str, extra: dict[str, Any] | None) -> None:
        self._executor.logged(self._state, level, message, extra)

    @property
    def resumed(self) -> bool:
        """Whether this run continues a job that was suspended and resumed."""
        return bool(self._state.row.get("resumed"))

    @property
    def id(self) -> uuid.UUID:
        return self._state.job_id

    @property
    def attempt(self) -> int:
        return int(self._state.row["attempt"])

    @property
    def checkpoint_state(self) -> Any:
        """The state saved by the last ``checkpoint()`` of this job, or None."""
        return self._state.row.get("checkpoint")

    @property
    def progress_value(self) -> float:
        return self._state.progress

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
        """Report progress, in one of four forms: ``percent`` on a 0..100 scale
        (``ctx.progress(75)`` is three quarters), ``fraction=`` on 0..1
        (``fraction=0.75``), ``current=``/``total=`` counts, or
        ``bytes_done=``/``bytes_total=``; ``details`` alone keeps the amount.

        Subscribers see every call; the store gets the latest, throttled."""
        state = self._state
        report = make_report(
            percent=percent,
            fraction=fraction,
            current=current,
            total=total,
            bytes_done=bytes_done,
            bytes_total=bytes_total,
            details=details,
            previous=state.progress,
        )
        now = self._executor.clock.now()
        state.progress = report.percent
        state.details = report.details or state.details
        state.eta = estimate_eta(now, state.since, state.progress_from, report.percent)
        self._executor.progress_changed(state, now)

    async def checkpoint(self, state: Any) -> None:
        """Persist a JSON-serialisable state; a later attempt reads it as ``checkpoint_state``.

        It is durable when this returns. Raises :class:`JobLost`, storing
        nothing, if the job is no longer this worker's (rescued after its lease
        lapsed): the handler should stop."""
        await self._executor.save_checkpoint(self._state, state)

    async def check_in(self, message: str) -> None:
        """Set the job's short status line (shown by the API and sent to its status hook).

        NUL characters and unpaired surrogates, which no store keeps, are
        stored as backslash escapes, and the job's log notes it."""
        text = self._storable("ctx.check_in", str(message))
        await self._executor.check_in(self._state, text)

    def warn(self, message: str) -> None:
        """Record a non-critical error on the job and carry on (stored as
        :meth:`check_in` stores its text)."""
        text = self._storable("ctx.warn", str(message))
        self._state.errors.append(text)
        self._executor.warned(self._state, text)

    # -- workflows (runtime.workflows; docs/workflows.md) ----------------------

    async def spawn(
        self, job_type: Any, params: Any = None, *, key: str | None = None, **options: Any
    ) -> Job:
        """Start a child job linked to this one (its ``parent_id``); its snapshot.

        Spawning is idempotent across runs of this job: a run after a restart
        or after :meth:`wait_children` gets back the child an earlier run
        spawned with the same ``key``, or, without one, at the same place in
        the order of its spawns (``#0``, ``#1``, ...: keep that order the same
        on every run). ``options`` as for ``Runtime.enqueue`` (``queue``,
        ``priority``, ``delay``, ...); the child has this job's tenant."""
        return (await self.spawn_many(job_type, [params], keys=[key], **options))[0]

    async def spawn_many(
        self,
        job_type: Any,
        params: Iterable[Any],
        *,
        keys: Sequence[str | None] | None = None,
        **options: Any,
    ) -> list[Job]:
        """Start many children of one type in one write (as :meth:`spawn`)."""
        items = list(params)
        given = list(keys) if keys is not None else [None] * len(items)
        if len(given) != len(items):
            raise ValueError(f"{len(given)} keys for {len(items)} children")
        state = self._state
        spawn_keys = []
        for key in given:
            if key is None:
                spawn_keys.append(self._spawn_key(f"#{state.spawned}"))
            elif isinstance(key, str) and key and not key.startswith("#"):
                spawn_keys.append(self._spawn_key(key))
            else:
                raise ValueError(
                    f"a spawn key is a non-empty string not starting with '#': {key!r}"
                )
            state.spawned += 1
        return await self._workflows().spawn(state, job_type, items, spawn_keys, options)

    def _spawn_key(self, key: str) -> str:
        """The key a spawn is stored under (a step's context makes it the step's own)."""
        return key

    async def wait_children(self, children: Iterable[JobId | Job] | None = None) -> list[JobResult]:
        """The outcomes of this job's children (those given, or all it spawned),
        once they have all ended, in the order given (or spawned).

        While any runs, this job gives its queue slot back: its run ends
        ``blocked`` here (the call does not return), and the job runs again,
        from its last checkpoint, when the last of them ends. That run spawns
        the same children again (getting the same ones back) and reaches this
        call again, which then returns. Checkpoint what the run before the
        wait did if redoing it costs. A failed child is a result with
        ``ok`` false, not an exception."""
        ids = None if children is None else [c.id if isinstance(c, Job) else c for c in children]
        return await self._workflows().wait_children(self._state, ids)

    async def dependency_results(
        self, *, after: uuid.UUID | None = None, limit: int = 1000
    ) -> list[JobResult]:
        """One page of the outcomes of the jobs this job depends on (a chord's
        members, in the order given, or ``depends_on``), by id from just
        after ``after``; an empty list past the last."""
        return await self._workflows().dependency_results(self._state, after, limit)

    async def iter_dependency_results(self, *, page: int = 1000) -> AsyncIterator[JobResult]:
        """Every outcome :meth:`dependency_results` pages through, ``page`` at a
        time: a 10,000-member chord's results never sit in memory at once."""
        after: uuid.UUID | None = None
        while True:
            batch = await self.dependency_results(after=after, limit=page)
            for item in batch:
                yield item
            if len(batch) < page:
                return
            after = batch[-1].id

    def _workflows(self) -> Workflows:
        workflows = self._executor.workflows
        if workflows is None:
            raise RuntimeError("this context cannot spawn or wait for jobs")
        return workflows

    def _storable(self, call: str, message: str) -> str:
        text, count = escaped(message)
        if count:
            note = f"{call}: {count} character(s) no store keeps (NUL, unpaired surrogates) escaped"
            self._executor.logged(self._state, logging.WARNING, note, {"escaped": count})
        return text


class HookContext:
    """What ``on_suspend`` and ``on_resume`` hooks see: the job, wherever it runs."""

    def __init__(self, job: Job) -> None:
        self.job = job

    @property
    def checkpoint_state(self) -> Any:
        return self.job.checkpoint


async def call_maybe_async(fn: Any, *args: Any) -> Any:
    """Call a sync or async hook or predicate."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
