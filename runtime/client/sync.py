"""``Client``: the HTTP API from sync code (a script, a Django or Flask view)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx

from runtime.client import calls
from runtime.client.calls import (
    TIMEOUT_DEFAULT,
    URL_DEFAULT,
    WAIT_STEP_MAX,
    Call,
    EnqueueFields,
    JobFilters,
    JobId,
    JobPage,
    ScheduleFields,
    Schedules,
)
from runtime.domain.models import Job
from runtime.schedules.model import Schedule

T = TypeVar("T")


class Client:
    """A Callboard server's HTTP API: ``with Client(url, token) as client``.

    Each method is the :class:`runtime.Runtime` method of the same name, over
    HTTP: it returns the same :class:`~runtime.Job` or
    :class:`~runtime.Schedule` and raises the same errors
    (:mod:`runtime.client.errors`). The token (``Authorization: Bearer``)
    decides the role and the tenant: jobs are enqueued in the token's
    tenant. ``timeout`` bounds each request (``wait`` asks as long as its
    own ``timeout`` says); ``transport``: httpx's, for tests. Thread-safe.
    """

    def __init__(
        self,
        url: str = URL_DEFAULT,
        token: str | None = None,
        *,
        timeout: float = TIMEOUT_DEFAULT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        timeout = httpx.USE_CLIENT_DEFAULT if call.timeout is None else call.timeout
        try:
            response = self._http.request(
                call.method, call.path, json=call.json, params=call.params, timeout=timeout
            )
        except httpx.TransportError as err:
            raise calls.unreachable(self.url, err) from err
        return calls.answered(call, response)

    # -- jobs ----------------------------------------------------------------

    def enqueue(self, job_type: str, params: Any = None, **fields: Unpack[EnqueueFields]) -> Job:
        """Store one job (``POST /jobs``); an idempotency key already used returns
        that job. ``params``: a dict or the type's pydantic model."""
        return self._send(calls.enqueue(job_type, params, fields))

    def get(self, job_id: JobId) -> Job:
        return self._send(calls.get(job_id))

    def list(self, *, page: int = 1, page_size: int = 50, **filters: Unpack[JobFilters]) -> JobPage:
        """One page of the jobs matching ``filters``, newest first, with their total."""
        return self._send(calls.list_jobs(page, page_size, filters))

    def wait(self, job_id: JobId, timeout: float | None = None) -> Job:
        """The job once it is finished; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_STEP_MAX if deadline is None else deadline - time.monotonic()
            done = self._send(calls.wait_step(job_id, left))
            if done is not None:
                return done
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s")

    def cancel(self, job_id: JobId, *, reason: str | None = None) -> Job:
        return self._send(calls.control("cancel", job_id, reason))

    def suspend(self, job_id: JobId) -> Job:
        return self._send(calls.control("suspend", job_id))

    def resume(self, job_id: JobId) -> Job:
        return self._send(calls.control("resume", job_id))

    def retry(self, job_id: JobId) -> Job:
        return self._send(calls.control("retry", job_id))

    def delete(self, job_id: JobId) -> None:
        return self._send(calls.delete(job_id))

    # -- schedules -----------------------------------------------------------

    def add_schedule(
        self, job_type: str, params: Any = None, **fields: Unpack[ScheduleFields]
    ) -> Schedule:
        return self._send(calls.add_schedule(job_type, params, fields))

    def get_schedule(self, key: str) -> Schedule:
        """A schedule by id or name."""
        return self._send(calls.get_schedule(key))

    def schedules(
        self, *, job_type: str | None = None, page: int = 1, page_size: int = 50
    ) -> Schedules:
        return self._send(calls.list_schedules(job_type, page, page_size))

    def pause_schedule(self, key: str) -> Schedule:
        return self._send(calls.schedule_action("pause", key))

    def resume_schedule(self, key: str) -> Schedule:
        return self._send(calls.schedule_action("resume", key))

    def trigger_schedule(self, key: str) -> Job:
        """One job of the schedule now, outside its slots."""
        return self._send(calls.trigger_schedule(key))

    def remove_schedule(self, key: str) -> None:
        return self._send(calls.remove_schedule(key))
