"""Request and response models of the HTTP API (the OpenAPI document's source).

Jobs and job events are answered as :class:`runtime.Job` and
:class:`runtime.JobEvent` themselves. Request models refuse unknown fields
and bound every number, so nothing a client sends can overflow the store.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from runtime.domain.logs import LogEntry
from runtime.domain.models import Job
from runtime.domain.status import JobStatus, filter_statuses
from runtime.jobs.bulk import BULK_LIMIT_DEFAULT, BULK_LIMIT_MAX
from runtime.jobs.enqueue import CANCEL_REASON_MAX, DESCRIPTION_MAX
from runtime.workflows.chords import CHORD_MEMBERS_MAX
from runtime.workflows.dependencies import DEPENDENCIES_MAX
from runtime.workflows.step_specs import STEPS_MAX

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200
PAGE_MAX = 1_000_000
WAIT_TIMEOUT_DEFAULT = 30.0
WAIT_TIMEOUT_MAX = 300.0
DELAY_MAX = 10 * 366 * 86400.0  # ten years
TIMEOUT_MAX = 366 * 86400.0
NAME_MAX = 200
URL_MAX = 2048
LOG_LIMIT_DEFAULT = 1000
CHILDREN_SHOWN = 100
"""The children ``GET /jobs/{id}`` lists (``?parent_id=`` pages through them all)."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check_hook_url(url: str) -> str:
    """A status hook must be an absolute http(s) URL without credentials."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("status_hook must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("status_hook must not carry credentials; hooks are signed instead")
    # urlsplit accepts hosts that httpx or the resolver cannot encode ("a..b",
    # "xn--", a label over 63 characters): such a hook could never be sent.
    try:
        parts.port  # noqa: B018 -- raises for a port out of range
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 -- decoding checks the A-labels ("xn--")
        host = parsed.raw_host.decode("ascii")
        if not _is_ip(host):
            host.encode("idna")  # checks each label's length
    except (httpx.InvalidURL, ValueError) as err:
        raise ValueError(f"status_hook is not a URL that can be sent to: {err}") from None
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class StepRequest(_Request):
    """One step of a multi-step job (``POST /jobs`` with ``steps``)."""

    type: str = Field(min_length=1, max_length=NAME_MAX, description="a registered job type")
    params: dict[str, Any] = Field(
        default_factory=dict, description="checked by the type, over step_defaults"
    )
    mandatory: bool = Field(
        default=True, description="if it fails for good, the job fails and skips the rest"
    )
    max_retries: int | None = Field(
        default=None, ge=0, le=1000, description="the step's own retries (default: its type's)"
    )
    retry_delay: float | None = Field(
        default=None, ge=0, le=TIMEOUT_MAX, description="seconds before each retry of the step"
    )


class EnqueueRequest(_Request):
    """``POST /jobs``: one job to store: of one ``type``, or a list of ``steps``."""

    type: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_MAX,
        description="a registered job type (give type or steps)",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="checked by the type")
    steps: list[StepRequest] | None = Field(
        default=None,
        min_length=1,
        max_length=STEPS_MAX,
        description="a multi-step job: steps run in order (give type or steps)",
    )
    step_defaults: dict[str, Any] | None = Field(
        default=None,
        description="with steps: params every step gets unless it sets them (only the"
        " names its type declares)",
    )
    queue: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    delay: float | None = Field(default=None, ge=0, le=DELAY_MAX, description="seconds")
    at: AwareDatetime | None = Field(default=None, description="run at (with a time zone)")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    timeout: float | None = Field(default=None, gt=0, le=TIMEOUT_MAX, description="seconds")
    max_retries: int | None = Field(default=None, ge=0, le=1000)
    lock_key: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    status_hook: str | None = Field(
        default=None,
        max_length=URL_MAX,
        description="http(s) URL of a public address (or one the server allows)",
    )
    retry_delay: float | None = Field(
        default=None, ge=0, le=TIMEOUT_MAX, description="seconds before the first retry"
    )
    description: str | None = Field(
        default=None, max_length=DESCRIPTION_MAX, description="free text about this job"
    )
    depends_on: list[uuid.UUID] | None = Field(
        default=None,
        min_length=1,
        max_length=DEPENDENCIES_MAX,
        description="ids of jobs to wait for (404 if one is unknown); the job waits"
        " `blocked` until all completed",
    )
    run_on_failure: bool = Field(
        default=False,
        description="with depends_on: run once they all ended, even if one failed",
    )

    @field_validator("status_hook")
    @classmethod
    def _hook(cls, value: str | None) -> str | None:
        return None if value is None else check_hook_url(value)

    @field_validator("at")
    @classmethod
    def _at(cls, value: datetime | None) -> datetime | None:
        if value is not None and not 1970 <= value.year <= 9000:
            raise ValueError("at must be between the years 1970 and 9000")
        return value

    @model_validator(mode="after")
    def _when(self) -> EnqueueRequest:
        if self.delay is not None and self.at is not None:
            raise ValueError("give delay or at, not both")
        if (self.type is None) == (self.steps is None):
            raise ValueError("give type (with params) or steps, not both")
        if self.steps is not None and self.params:
            raise ValueError("a job with steps takes no params: give each step its own")
        if self.steps is None and self.step_defaults is not None:
            raise ValueError("step_defaults go with steps")
        return self


class CancelRequest(_Request):
    """``POST /jobs/{job_id}/cancel``: an optional body."""

    reason: str | None = Field(
        default=None, max_length=CANCEL_REASON_MAX, description="why; kept on the job"
    )


class ControlRequest(_Request):
    """``POST /jobs/{job_id}/suspend``, ``/resume``, ``/retry``: no fields (the body may
    be empty or ``{}``)."""


def _statuses(value: str | None) -> str | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    return ",".join(filter_statuses(names))


class JobFilters(_Request):
    """Filters shared by ``GET /jobs`` and ``GET /events``."""

    status: str | None = Field(default=None, description="comma-separated statuses")
    type: str | None = Field(default=None, max_length=NAME_MAX)
    group: str | None = Field(default=None, max_length=NAME_MAX)
    queue: str | None = Field(default=None, max_length=NAME_MAX)
    schedule_id: str | None = Field(default=None, max_length=NAME_MAX)
    idempotency_key: str | None = Field(default=None, max_length=NAME_MAX)

    @field_validator("status")
    @classmethod
    def _check_status(cls, value: str | None) -> str | None:
        return _statuses(value)

    @property
    def statuses(self) -> list[str] | None:
        return None if self.status is None else self.status.split(",")


class SearchFilters(JobFilters):
    """Filters of ``GET /jobs`` and the bulk actions: :class:`JobFilters`, a text search
    and (for admins) a tenant."""

    search: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_MAX,
        description="a job id, its first or last hex digits, or the start of an idempotency key",
    )
    tenant: str | None = Field(
        default=None, min_length=1, max_length=NAME_MAX, description="admins only: one tenant"
    )


class ListJobsQuery(SearchFilters):
    """``GET /jobs``: filters and paging."""

    parent_id: uuid.UUID | None = Field(default=None, description="the children of this job")

    page: int = Field(default=1, ge=1, le=PAGE_MAX)
    page_size: int = Field(default=PAGE_SIZE_DEFAULT, ge=1, le=PAGE_SIZE_MAX)


class EventsQuery(JobFilters):
    """``GET /events``: filters, and where to resume (else the Last-Event-ID header)."""

    parent_id: uuid.UUID | None = Field(default=None, description="the children of this job")

    last_event_id: str | None = Field(default=None, max_length=100)


class JobEventsQuery(_Request):
    last_event_id: str | None = Field(default=None, max_length=100)


class WaitQuery(_Request):
    timeout: float = Field(default=WAIT_TIMEOUT_DEFAULT, ge=0, le=WAIT_TIMEOUT_MAX)


class LogsQuery(_Request):
    since: AwareDatetime | None = None
    level: str | None = Field(default=None, max_length=20, description="DEBUG, INFO, ... or 10")
    limit: int = Field(default=LOG_LIMIT_DEFAULT, ge=1, le=10_000)


class ChildSummary(BaseModel):
    """One child of a job: its id and status."""

    id: uuid.UUID
    status: JobStatus


class JobDetail(Job):
    """One job, with the ids of the jobs it depends on and its first children."""

    depends_on: list[uuid.UUID] = []
    children: list[ChildSummary] = Field(
        default=[],
        description=f"the first {CHILDREN_SHOWN} children it spawned, in that order"
        " (all of them: GET /jobs?parent_id=)",
    )
    children_count: int = 0


class ChordMember(_Request):
    """``POST /chords``: the callback."""

    type: str = Field(min_length=1, max_length=NAME_MAX, description="a registered job type")
    params: dict[str, Any] = Field(default_factory=dict, description="checked by the type")
    queue: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    timeout: float | None = Field(default=None, gt=0, le=TIMEOUT_MAX, description="seconds")
    max_retries: int | None = Field(default=None, ge=0, le=1000)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class ChordRequest(_Request):
    """``POST /chords``: a group of jobs of one type and a callback that runs once
    they all ended (reading their results with ``ctx.dependency_results``)."""

    type: str = Field(min_length=1, max_length=NAME_MAX, description="the members' job type")
    params: list[dict[str, Any]] = Field(
        min_length=1, max_length=CHORD_MEMBERS_MAX, description="one item per member"
    )
    callback: ChordMember
    run_on_failure: bool = Field(
        default=False, description="run the callback even if a member failed (else: skipped)"
    )
    queue: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    timeout: float | None = Field(default=None, gt=0, le=TIMEOUT_MAX, description="seconds")
    max_retries: int | None = Field(default=None, ge=0, le=1000)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class ChordCreated(BaseModel):
    """A stored chord: its callback job and its members' ids, in the order given."""

    callback: Job
    members: list[uuid.UUID]


class JobPage(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[Job]
    page: int
    page_size: int
    total: int


class JobLog(BaseModel):
    """A job's log records, oldest first."""

    job_id: uuid.UUID
    records: list[LogEntry]


class JobTypeInfo(BaseModel):
    """A registered job type, with its params JSON schema."""

    model_config = ConfigDict(extra="allow")

    name: str
    group: str
    queue: str
    description: str = ""
    timeout: float | None = None
    max_retries: int = 0
    retry_delay: float = 0.0
    priority: int = 0
    version: int = 1
    lock: str | None = None
    max_concurrency: int | None = None
    rate_limit: str | None = None
    unique: bool = False
    suspendable: bool = True
    params_schema: dict[str, Any] = {}


class JobTypeList(BaseModel):
    types: list[JobTypeInfo]


class JobGroupInfo(BaseModel):
    name: str
    description: str = ""
    types: list[str] = []


class JobGroupList(BaseModel):
    groups: list[JobGroupInfo]


class QueueInfo(BaseModel):
    """A queue here: capacity and pause state, and (for admins) its counts."""

    name: str
    capacity: int
    paused: bool
    waiting: int | None = None
    running: int | None = None
    scheduled: int | None = None
    locked: int | None = None
    suspended: int | None = None
    completed_last_minute: int | None = None
    failed_last_minute: int | None = None
    # Set when jobs wait on it and no live worker serves it.
    warning: str | None = None


class QueueHistory(BaseModel):
    """Jobs of a queue completed and failed (or timed out) per bucket, oldest first."""

    completed: list[int]
    failed: list[int]


class QueueList(BaseModel):
    queues: list[QueueInfo]
    bucket_seconds: float | None = Field(default=None, description="with ?history=")
    history: dict[str, QueueHistory] | None = Field(
        default=None, description="admins, with ?history=MINUTES: per queue, oldest first"
    )


class QueuesQuery(_Request):
    """``GET /queues``: ``history`` asks for the last minutes' outcomes per bucket."""

    history: int = Field(default=0, ge=0, le=60, description="minutes (admins only)")


class QueuePatch(_Request):
    capacity: int = Field(ge=0, le=100_000)


class Health(BaseModel):
    status: Literal["ok", "starting", "stopping", "unavailable"]
    checks: dict[str, str] = {}


class BulkRequest(SearchFilters):
    """``POST /jobs/bulk/{action}``: the jobs matching these filters (at least one)."""

    limit: int = Field(
        default=BULK_LIMIT_DEFAULT,
        ge=1,
        le=BULK_LIMIT_MAX,
        description="act on at most this many (newest first); the rest stay for another call",
    )
    dry_run: bool = Field(default=False, description="only count the matching jobs")
    reason: str | None = Field(
        default=None, max_length=CANCEL_REASON_MAX, description="cancel only: kept on each job"
    )

    @model_validator(mode="after")
    def _some_filter(self) -> BulkRequest:
        names = set(SearchFilters.model_fields)
        if not any(getattr(self, name) is not None for name in names):
            raise ValueError(f"give at least one filter: {', '.join(sorted(names))}")
        return self


class BulkResponse(BaseModel):
    """What a bulk action did: each job moved by its own compare-and-set."""

    action: str
    dry_run: bool
    matched: int = Field(description="jobs matching the filters")
    selected: int = Field(description="of those, the ones acted on (at most limit)")
    changed: int
    skipped: int = Field(description="jobs whose status no longer allowed it, or gone")
    skipped_by_status: dict[str, int]
    remaining: int = Field(description="matching jobs beyond the limit")


class WhoAmI(BaseModel):
    """The caller, as its token says."""

    name: str
    tenant_id: str | None
    role: str
    auth: bool = Field(description="false when the API has no tokens (everyone is admin)")
