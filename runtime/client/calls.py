"""The API's calls, once for both clients: what each sends and how its answer reads.

A :class:`Call` names the method, the path under ``/api/v1``, the body and
the query, and turns the answer's JSON into the value the Python API
returns for the same thing (a :class:`~runtime.Job`, a
:class:`~runtime.Schedule`). :class:`~runtime.client.Client` sends them with
httpx's sync client, :class:`~runtime.client.AsyncClient` with its async one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from runtime.client.errors import ServerUnreachable, error_from
from runtime.domain.models import Job
from runtime.schedules.model import Schedule

T = TypeVar("T")
JobId = uuid.UUID | str
WAIT_STEP_MAX = 300.0
URL_DEFAULT = "http://127.0.0.1:8000"
TIMEOUT_DEFAULT = 30.0  # seconds a request may take
Schedules = list[Schedule]
"""The longest one ``GET /jobs/{id}/wait`` may wait (the server's limit):
``wait`` asks again until its own timeout."""


class EnqueueFields(TypedDict, total=False):
    """What ``enqueue`` may set besides the params (``POST /jobs``'s fields).
    The tenant and the user are the token's."""

    queue: str
    priority: int
    delay: float | timedelta
    at: datetime
    idempotency_key: str
    timeout: float
    max_retries: int
    lock_key: str
    status_hook: str
    retry_delay: float
    description: str
    depends_on: Iterable[JobId]
    run_on_failure: bool


class JobFilters(TypedDict, total=False):
    """``list``'s filters (``GET /jobs``'s query)."""

    status: str | Iterable[str]
    type: str
    group: str
    queue: str
    schedule_id: str
    idempotency_key: str
    search: str
    tenant: str  # admins only


class ScheduleFields(TypedDict, total=False):
    """What ``add_schedule`` may set besides the job type and params: exactly
    one of ``every``, ``cron``, ``at`` and ``fields`` (see ``Runtime.add_schedule``)."""

    every: str | float | timedelta
    cron: str
    cron_seconds: Literal["first", "last"]
    at: datetime
    fields: Mapping[str, int | str | list[int | str]]
    tz: str
    start: datetime
    end: datetime
    name: str
    overlap: str
    misfire: str
    max_catch_up: int
    paused: bool
    queue: str


class JobPage(BaseModel):
    """One page of jobs, newest first, and how many match in all."""

    model_config = ConfigDict(frozen=True)

    jobs: list[Job]
    page: int
    page_size: int
    total: int


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str  # under /api/v1
    read: Callable[[int, Any], T]  # (status, JSON body) -> the value returned
    json: Any = None
    params: Mapping[str, Any] | None = None
    timeout: float | None = None  # the HTTP timeout, when the call itself waits


def _job(status: int, body: Any) -> Job:
    return Job.model_validate(body)


def _schedule(status: int, body: Any) -> Schedule:
    return Schedule.model_validate(body)


def _nothing(status: int, body: Any) -> None:
    return None


def _id(job_id: JobId) -> str:
    return quote(str(job_id), safe="")


def _json(value: Any) -> Any:
    """A value as the API's JSON body takes it."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json(v) for v in value]
    return value


def enqueue(job_type: str, params: Any, fields: EnqueueFields) -> Call[Job]:
    given: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if "depends_on" in given:  # any iterable of ids, a generator too
        given["depends_on"] = [str(job_id) for job_id in given["depends_on"]]
    body: dict[str, Any] = {"type": job_type, "params": _json(params or {})}
    body.update(_json(given))
    return Call("POST", "/jobs", _job, json=body)


def get(job_id: JobId) -> Call[Job]:
    return Call("GET", f"/jobs/{_id(job_id)}", _job)


def list_jobs(page: int, page_size: int, filters: JobFilters) -> Call[JobPage]:
    query: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
    status = query.get("status")
    if status is not None and not isinstance(status, str):
        query["status"] = ",".join(str(s) for s in status)
    query.update(page=page, page_size=page_size)
    return Call("GET", "/jobs", lambda status, body: JobPage.model_validate(body), params=query)


def wait_step(job_id: JobId, seconds: float) -> Call[Job | None]:
    """One wait of up to ``seconds``: the finished job, or None (202, not yet)."""

    def read(status: int, body: Any) -> Job | None:
        return Job.model_validate(body) if status == 200 else None

    step = max(0.0, min(seconds, WAIT_STEP_MAX))
    query = {"timeout": step}
    return Call("GET", f"/jobs/{_id(job_id)}/wait", read, params=query, timeout=step + 30.0)


def control(action: str, job_id: JobId, reason: str | None = None) -> Call[Job]:
    body = {} if reason is None else {"reason": reason}
    return Call("POST", f"/jobs/{_id(job_id)}/{action}", _job, json=body)


def delete(job_id: JobId) -> Call[None]:
    return Call("DELETE", f"/jobs/{_id(job_id)}", _nothing)


def add_schedule(job_type: str, params: Any, fields: ScheduleFields) -> Call[Schedule]:
    body: dict[str, Any] = {"job_type": job_type, "params": _json(params or {})}
    body.update(_json({k: v for k, v in fields.items() if v is not None}))
    return Call("POST", "/schedules", _schedule, json=body)


def get_schedule(key: str) -> Call[Schedule]:
    return Call("GET", f"/schedules/{_id(key)}", _schedule)


def list_schedules(job_type: str | None, page: int, page_size: int) -> Call[list[Schedule]]:
    def read(status: int, body: Any) -> list[Schedule]:
        return [Schedule.model_validate(s) for s in body["schedules"]]

    query = {"job_type": job_type, "page": page, "page_size": page_size}
    return Call("GET", "/schedules", read, params={k: v for k, v in query.items() if v})


def schedule_action(action: str, key: str) -> Call[Schedule]:
    return Call("POST", f"/schedules/{_id(key)}/{action}", _schedule)


def trigger_schedule(key: str) -> Call[Job]:
    return Call("POST", f"/schedules/{_id(key)}/trigger", _job)


def remove_schedule(key: str) -> Call[None]:
    return Call("DELETE", f"/schedules/{_id(key)}", _nothing)


def answered(call: Call[T], response: httpx.Response) -> T:
    """The value of a 2xx answer; the API's error, raised as the Python API's."""
    body = _body(response)
    if response.is_success:
        return call.read(response.status_code, body)
    raise error_from(response.status_code, body, response.headers, call.path)


def unreachable(url: str, err: Exception) -> ServerUnreachable:
    return ServerUnreachable(f"cannot reach {url}: {err or type(err).__name__}")


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text
