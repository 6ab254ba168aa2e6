"""The pydantic snapshots that the public API returns."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from runtime.domain.clock import to_datetime
from runtime.domain.status import JobStatus
from runtime.domain.steps import JobStep, steps_from_records


class Job(BaseModel):
    """A snapshot of one job as the store had it when it was read."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    type: str
    group: str
    queue: str
    status: JobStatus
    priority: int = 0
    params: dict[str, Any] = {}
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    errors: list[str] = []
    progress: float = 0.0
    progress_details: dict[str, Any] | None = None
    eta: datetime | None = None
    attempt: int = 0
    max_retries: int = 0
    timeout: float | None = None
    scheduled_at: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    worker_id: str | None = None
    idempotency_key: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    checkpoint: Any = None
    checkpoint_at: datetime | None = None
    revision: int = 0
    check_in: str | None = None
    status_hook: str | None = None
    lock_key: str | None = None
    locked_by: str | None = None
    resumed: bool = False
    checkpoint_version: int | None = None
    schedule_id: str | None = None
    slot: datetime | None = None
    retry_delay: float = 0.0
    description: str | None = None
    cancel_reason: str | None = None
    check_in_at: datetime | None = None
    wall_time: float | None = None
    cpu_time: float | None = None
    peak_memory: int | None = None
    # A multi-step job's steps, in order (runtime.workflows.steps); None for others.
    steps: list[JobStep] | None = None
    parent_id: uuid.UUID | None = None  # the job that spawned it (ctx.spawn)

    @property
    def is_finished(self) -> bool:
        return self.status.is_terminal

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        """Build a snapshot from a store row without re-validating it (hot path).

        What ``model_construct`` does, minus its per-field default handling:
        a store row carries every column, so only absent names take defaults.
        """
        get = row.get
        values: dict[str, Any] = {name: get(name, default) for name, default in _PLAIN}
        for name in _TIMES:  # keys already in field order: dumps and reprs keep it
            epoch = values[name]
            if epoch is not None:
                values[name] = datetime.fromtimestamp(epoch, UTC)
        values["status"] = _STATUSES[row["status"]]
        values["errors"] = values["errors"] or []
        values["params"] = values["params"] or {}
        if values["steps"] is not None:
            values["steps"] = steps_from_records(values["steps"])
        fields = _FIELD_SET if row.keys() >= _FIELD_SET else filter(row.__contains__, values)
        return _snapshot(cls, values, set(fields))

    @classmethod
    def from_similar_rows(
        cls, rows: Sequence[Mapping[str, Any]], varying: Iterable[str]
    ) -> list[Job]:
        """Snapshots of ``rows`` that hold the same values but in the ``varying`` columns
        (the jobs of one bulk enqueue): the shared values are converted once."""
        if len(rows) < 2:
            return [cls.from_row(row) for row in rows]
        first = cls.from_row(rows[0])
        like = SimilarSnapshots(first, varying)
        return [first, *map(like, rows[1:])]

    @classmethod
    def from_columns(cls, shared: Mapping[str, Any], per_row: Mapping[str, list[Any]]) -> list[Job]:
        """Snapshots of rows that hold ``shared``'s values but in ``per_row``'s
        columns (row ``i`` holds each column's value ``i``), as ``from_row`` makes
        them; no row is built."""
        count = len(next(iter(per_row.values())))
        if not count:
            return []
        first = cls.from_row({**shared, **{name: column[0] for name, column in per_row.items()}})
        return [first, *SimilarSnapshots(first, per_row).from_columns(per_row, 1, count)]


class SimilarSnapshots:
    """Snapshots of rows that hold ``first``'s values but in the ``varying`` columns,
    made by changing a copy of its values (see ``Job.from_similar_rows``)."""

    __slots__ = ("_base", "_cls", "_containers", "_converted", "_fields", "_plain")

    def __init__(self, first: Job, varying: Iterable[str]) -> None:
        self._cls = type(first)
        self._base = base = first.__dict__
        # One fields set for all: a frozen snapshot never changes its own, and
        # ``model_copy`` copies it.
        self._fields = first.__pydantic_fields_set__
        names = [n for n in varying if n in _FIELD_SET]
        self._plain = [n for n in names if n not in _CONVERTED]
        self._converted = [n for n in names if n in _CONVERTED]
        # Shared containers are copied: no two snapshots share a mutable value.
        self._containers = [
            n for n, v in base.items() if isinstance(v, list | dict) and n not in names
        ]

    def __call__(self, row: Mapping[str, Any]) -> Job:
        values = {name: row[name] for name in self._plain}
        for name in self._converted:
            values[name] = _converted(name, row[name])
        return self.changed(values)

    def changed(self, values: Mapping[str, Any]) -> Job:
        """A snapshot holding ``values`` (as fields hold them: converted) in the
        varying fields and ``first``'s in the rest."""
        base = self._base
        out = base.copy()
        out.update(values)
        for name in self._containers:
            shared = base[name]
            out[name] = deepcopy(shared) if shared else type(shared)()
        return _snapshot(self._cls, out, self._fields)

    def from_columns(self, per_row: Mapping[str, list[Any]], start: int, stop: int) -> list[Job]:
        """The snapshots of rows ``start`` to ``stop`` (excluded) of ``per_row``'s
        columns, which hold the varying values (see ``Job.from_columns``)."""
        if self._plain == ["id"] and self._converted == ["params"]:  # a keyless bulk enqueue
            return self._of_ids_and_params(per_row["id"][start:stop], per_row["params"][start:stop])
        base, cls, fields, containers = self._base, self._cls, self._fields, self._containers
        plain = [(name, per_row[name]) for name in self._plain]
        converted = [(name, per_row[name]) for name in self._converted]
        out = []
        for index in range(start, stop):
            values = base.copy()
            for name, column in plain:
                values[name] = column[index]
            for name, column in converted:
                values[name] = _converted(name, column[index])
            for name in containers:
                shared = base[name]
                values[name] = deepcopy(shared) if shared else type(shared)()
            out.append(_snapshot(cls, values, fields))
        return out

    def _of_ids_and_params(self, ids: list[Any], params: list[Any]) -> list[Job]:
        """:meth:`from_columns` for ``id`` and ``params`` alone, inlined (a third
        of a bulk enqueue's Python went to its snapshots)."""
        base, cls, fields, containers = self._base, self._cls, self._fields, self._containers
        new, set_slot = object.__new__, object.__setattr__
        out = []
        for job_id, values_of in zip(ids, params, strict=True):
            values = base.copy()
            values["id"] = job_id
            values["params"] = values_of or {}
            for name in containers:
                shared = base[name]
                values[name] = deepcopy(shared) if shared else type(shared)()
            job = new(cls)
            set_slot(job, "__dict__", values)
            set_slot(job, "__pydantic_fields_set__", fields)
            set_slot(job, "__pydantic_extra__", None)
            set_slot(job, "__pydantic_private__", None)
            out.append(job)
        return out


def _snapshot(cls: type[Job], values: dict[str, Any], fields: set[str]) -> Job:
    """A snapshot holding ``values`` as they are: what ``model_construct`` makes."""
    job = cls.__new__(cls)
    _set = object.__setattr__
    _set(job, "__dict__", values)
    _set(job, "__pydantic_fields_set__", fields)
    _set(job, "__pydantic_extra__", None)
    _set(job, "__pydantic_private__", None)
    return job


def _converted(name: str, value: Any) -> Any:
    """A store value as :meth:`Job.from_row` makes it a field value."""
    if name == "status":
        return _STATUSES[value]
    if name in _TIMES:
        return None if value is None else datetime.fromtimestamp(value, UTC)
    if name == "errors":
        return value or []
    if name == "steps":
        return None if value is None else steps_from_records(value)
    return value or {}  # params


_TIMES = (
    "eta",
    "scheduled_at",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "slot",
    "checkpoint_at",
    "check_in_at",
)
_PLAIN = tuple(
    (name, field.get_default(call_default_factory=True)) for name, field in Job.model_fields.items()
)
_FIELD_SET = frozenset(Job.model_fields)
_CONVERTED = frozenset({"status", "errors", "params", "steps", *_TIMES})
_STATUSES = {status.value: status for status in JobStatus}


JobId = uuid.UUID | str  # a job id, or its text

_CANCELING = frozenset({JobStatus.CANCELING.value, JobStatus.CANCELED.value})

EventKind = Literal["status", "progress", "checkpoint", "warning", "check_in", "step", "child"]


class JobEvent(BaseModel):
    """Something that happened to a job, as subscribers see it."""

    model_config = ConfigDict(frozen=True)

    job_id: uuid.UUID
    kind: EventKind
    status: JobStatus
    at: datetime | None
    progress: float | None = None
    progress_details: dict[str, Any] | None = None
    eta: datetime | None = None
    message: str | None = None
    queue: str = ""
    type: str = ""
    revision: int | None = None
    # What the job is and whose, so subscribers (SSE, status hooks, metrics)
    # can filter and route events without reading the store.
    group: str = ""
    tenant_id: str | None = None
    attempt: int = 0
    check_in: str | None = None
    status_hook: str | None = None
    schedule_id: str | None = None
    idempotency_key: str | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    cancel_reason: str | None = None
    description: str | None = None
    check_in_at: datetime | None = None
    # Set on the status event that announces the end of an attempt in this
    # process (not on later events about the same job): what it used.
    ended_attempt: bool = False
    wall_time: float | None = None
    cpu_time: float | None = None
    peak_memory: int | None = None
    # A ``step`` event's step of a multi-step job: its index (from 0) and status.
    step: int | None = None
    step_status: str | None = None
    # A child's events name its parent (ctx.spawn): a watcher of a workflow
    # follows its children by it (GET /api/v1/events?parent_id=).
    parent_id: uuid.UUID | None = None
    # A ``child`` event: a child's status event addressed to its parent
    # (``job_id``), so a watcher of the parent sees its children move.
    child_id: uuid.UUID | None = None
    child_status: str | None = None

    @property
    def is_final(self) -> bool:
        return self.kind == "status" and self.status.is_terminal


def event_from_row(
    row: Mapping[str, Any], at: float, kind: EventKind = "status", message: str | None = None
) -> JobEvent:
    """A job event from a store row (no validation: rows are already valid)."""
    status = JobStatus(row["status"])
    if message is None and kind == "status":
        message = row.get("error")
        if message is None and row["status"] in _CANCELING:
            message = row.get("cancel_reason")
    return JobEvent.model_construct(
        job_id=row["id"],
        kind=kind,
        status=status,
        at=to_datetime(at),
        progress=row.get("progress"),
        progress_details=row.get("progress_details"),
        eta=to_datetime(row.get("eta")),
        message=message,
        queue=row["queue"],
        type=row["type"],
        revision=row.get("revision"),
        group=row.get("group") or "",
        tenant_id=row.get("tenant_id"),
        attempt=row.get("attempt") or 0,
        check_in=row.get("check_in"),
        status_hook=row.get("status_hook"),
        schedule_id=row.get("schedule_id"),
        idempotency_key=row.get("idempotency_key"),
        scheduled_at=to_datetime(row.get("scheduled_at")),
        started_at=to_datetime(row.get("started_at")),
        cancel_reason=row.get("cancel_reason"),
        description=row.get("description"),
        check_in_at=to_datetime(row.get("check_in_at")),
        ended_attempt=bool(row.get("ended_attempt")),
        wall_time=row.get("wall_time"),
        cpu_time=row.get("cpu_time"),
        peak_memory=row.get("peak_memory"),
        parent_id=row.get("parent_id"),
    )


def child_event(event: JobEvent) -> JobEvent:
    """A child's status ``event`` addressed to its parent: a ``child`` event whose
    ``job_id`` is the parent and ``child_id`` / ``child_status`` the child. The
    rest (status, type, queue, message) describes the child; the parent's own
    revision, progress and status hook are not known here, so they are left out
    (a stream's resume ids and a hook's ordering follow the parent's own events)."""
    assert event.parent_id is not None
    return event.model_copy(
        update={
            "job_id": event.parent_id,
            "kind": "child",
            "child_id": event.job_id,
            "child_status": event.status.value,
            "parent_id": None,
            "revision": None,
            "progress": None,
            "progress_details": None,
            "eta": None,
            "status_hook": None,
            "ended_attempt": False,
            "message": _child_message(event),
        }
    )


def _child_message(event: JobEvent) -> str:
    text = f"child {event.job_id} {event.type}: {event.status.value}"
    return text if event.message is None else f"{text}: {event.message}"


def event_from_job(job: Job) -> JobEvent:
    """A status event describing a snapshot (the first event of ``rt.events``)."""
    return JobEvent.model_construct(
        job_id=job.id,
        kind="status",
        status=job.status,
        at=job.updated_at,
        progress=job.progress,
        progress_details=job.progress_details,
        eta=job.eta,
        message=job.error
        if job.error is not None or job.status not in _CANCELING
        else job.cancel_reason,
        queue=job.queue,
        type=job.type,
        revision=job.revision,
        group=job.group,
        tenant_id=job.tenant_id,
        attempt=job.attempt,
        check_in=job.check_in,
        status_hook=job.status_hook,
        schedule_id=job.schedule_id,
        idempotency_key=job.idempotency_key,
        scheduled_at=job.scheduled_at,
        started_at=job.started_at,
        cancel_reason=job.cancel_reason,
        description=job.description,
        check_in_at=job.check_in_at,
        wall_time=job.wall_time,
        cpu_time=job.cpu_time,
        peak_memory=job.peak_memory,
        parent_id=job.parent_id,
    )


@dataclass(frozen=True, slots=True)
class JobResult:
    """How a job that another waited for ended: a child (``ctx.wait_children``)
    or a dependency, such as a chord's member (``ctx.dependency_results``)."""

    id: uuid.UUID
    type: str
    status: JobStatus
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether it completed (``result`` is its handler's return value)."""
        return self.status is JobStatus.COMPLETED

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobResult:
        return cls(row["id"], row["type"], JobStatus(row["status"]), row["result"], row["error"])
