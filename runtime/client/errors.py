"""The HTTP API's errors, raised as the Python API raises them.

An error answer (``{"error": code, "message": ..., "details": ...}``)
becomes the exception the same call raises on a :class:`runtime.Runtime`,
with the server's message::

    404 not_found on a job            JobNotFound
    404 not_found on a schedule       ScheduleNotFound
    404 not_found on a queue          UnknownQueue
    409 illegal_transition            IllegalTransition (current, action)
    409 hook_failed                   HookFailed
    409 ambiguous_name                AmbiguousSchedule
    422 invalid_params                InvalidParams (errors: field by field)
    422 unknown_job_type              UnknownJobType
    422 invalid_schedule              InvalidSchedule
    503 storage_unavailable           StorageUnavailable (retry_after: Retry-After)
    503 unavailable                   RuntimeNotRunning

What has no counterpart is a :class:`ClientError`::

    ClientError (CallboardError)      status, code, message, details
     |- InvalidRequest (ValueError)   400, 413, 422: the request itself is wrong
     |- Unauthorized (PermissionError)  401: no token, or an unknown one
     |- Forbidden (PermissionError)   403: the token's role may not do this
     |- NotFound (LookupError)        another 404 (an unknown route)
     `- ServerUnreachable (ConnectionError)  no answer: refused, reset, timed out
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from runtime.domain.errors import (
    AmbiguousSchedule,
    CallboardError,
    HookFailed,
    IllegalTransition,
    InvalidParams,
    InvalidSchedule,
    JobNotFound,
    RuntimeNotRunning,
    ScheduleNotFound,
    StorageUnavailable,
    UnknownJobType,
    UnknownQueue,
)


class ClientError(CallboardError):
    """The HTTP API answered with an error that the Python API has no class for."""

    def __init__(
        self, message: str, *, status: int = 0, code: str = "", details: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details


class InvalidRequest(ClientError, ValueError):
    """The request was refused as it stands (malformed, too large, a bad value)."""


class Unauthorized(ClientError, PermissionError):
    """No token, or one the server does not know."""


class Forbidden(ClientError, PermissionError):
    """The token's role (or tenant) may not do this."""


class NotFound(ClientError, LookupError):
    """Nothing at that address."""


class ServerUnreachable(ClientError, ConnectionError):
    """The server did not answer: refused, reset or timed out."""


_STATUS_CLASSES: dict[int, type[ClientError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: InvalidRequest,
    422: InvalidRequest,
}


def error_from(status: int, body: Any, headers: Mapping[str, str], path: str) -> CallboardError:
    """The exception for an error answer to a call on ``path`` (under /api/v1)."""
    body = body if isinstance(body, dict) else {"message": str(body or "")}
    code, message = str(body.get("error", "")), str(body.get("message") or f"HTTP {status}")
    details = body.get("details")
    make = _BY_CODE.get(code)
    if code == "not_found":
        make = _not_found(path)
    if make is not None:
        found = make(message, details, headers)
        if found is not None:
            found.args = (message,)  # the server's words, as the Runtime would say them
            return found
    kind = _STATUS_CLASSES.get(status, ClientError)
    return kind(message, status=status, code=code, details=details)


Maker = Callable[[str, Any, Mapping[str, str]], CallboardError | None]


def _illegal(message: str, details: Any, headers: Mapping[str, str]) -> CallboardError:
    found = re.match(r"cannot \S+ job (\S+):", message)
    details = details if isinstance(details, dict) else {}
    job_id = found.group(1) if found else ""
    return IllegalTransition(job_id, str(details.get("current")), str(details.get("action")))


def _invalid_params(message: str, details: Any, headers: Mapping[str, str]) -> CallboardError:
    found = re.search(r"job type '([^']*)'", message)
    errors = details if isinstance(details, list) else []
    return InvalidParams(found.group(1) if found else "", errors, message)


def _unknown_type(message: str, details: Any, headers: Mapping[str, str]) -> CallboardError:
    name = details.get("type") if isinstance(details, dict) else None
    return UnknownJobType(str(name or ""))


def _ambiguous(message: str, details: Any, headers: Mapping[str, str]) -> CallboardError:
    name = details.get("name") if isinstance(details, dict) else None
    tenants = re.match(r"schedules of (\d+) tenants", message)
    return AmbiguousSchedule(str(name or ""), int(tenants.group(1)) if tenants else 0)


def _storage(message: str, details: Any, headers: Mapping[str, str]) -> CallboardError:
    after = headers.get("Retry-After", "")
    retry_after = float(after) if after.isdigit() else StorageUnavailable.RETRY_AFTER_DEFAULT
    return StorageUnavailable(
        message.removeprefix("storage unavailable: "), retry_after=retry_after
    )


_BY_CODE: dict[str, Maker] = {
    "illegal_transition": _illegal,
    "hook_failed": lambda message, details, headers: HookFailed(message),
    "ambiguous_name": _ambiguous,
    "invalid_params": _invalid_params,
    "unknown_job_type": _unknown_type,
    "invalid_schedule": lambda message, details, headers: InvalidSchedule(message),
    "storage_unavailable": _storage,
    "unavailable": lambda message, details, headers: RuntimeNotRunning(message),
}


def _not_found(path: str) -> Maker | None:
    """404 of a job (its own route, or one that names it, as ``depends_on``),
    a schedule or a queue: the Python API's class for it."""

    def make(message: str, details: Any, headers: Mapping[str, str]) -> CallboardError | None:
        job = re.match(r"no job with id '([^']*)'", message)
        if job:
            return JobNotFound(job.group(1))
        schedule = re.match(r"no schedule with id or name '([^']*)'", message)
        if schedule:
            return ScheduleNotFound(schedule.group(1))
        if path.startswith("/queues/"):
            return UnknownQueue(message)
        return None

    return make
