"""HTTP errors: one JSON shape, the right status, never a stack trace.

::

    ApiError                  {"error": code, "message": ..., "details": ...}
     |- 400 malformed_json, nesting_too_deep, bad_request
     |- 401 unauthorized      no token, or an unknown one
     |- 403 forbidden         the token's role may not do this
     |- 404 not_found         unknown route, id, type, group, queue, schedule
     |                        (also another tenant's id)
     |- 405 method_not_allowed
     |- 409 illegal_transition  the message names the current status;
     |                          hook_failed (an on_suspend/on_resume hook raised);
     |                          ambiguous_name (a schedule name several tenants use)
     |- 413 payload_too_large   checked before the body is parsed
     |- 422 validation_error, invalid_params, unknown_job_type, invalid_schedule,
     |      invalid_request
     |- 503 unavailable       the runtime is stopping;
     |      storage_unavailable  the database cannot be written or reached now
     |                           (with Retry-After)
     `- 500 internal          a bug: logged, the body says nothing more

Callboard's own errors map onto these in :func:`from_callboard`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from pydantic import BaseModel, ValidationError
from quart import Quart, Response
from werkzeug.exceptions import HTTPException

from runtime.domain.errors import (
    AmbiguousSchedule,
    CallboardError,
    HookFailed,
    IllegalTransition,
    InvalidParams,
    InvalidSchedule,
    JobNotFound,
    RuntimeNotRunning,
    StorageUnavailable,
    UnknownJobType,
)
from runtime.store.faults import describe, is_storage_fault, unavailable

log = logging.getLogger("callboard.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    431: "headers_too_large",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    message: str
    details: Any = None


class ApiError(Exception):
    """An error answered as ``status`` with an :class:`ErrorBody`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def response(self) -> Response:
        body = ErrorBody(error=self.code, message=self.message, details=self.details)
        response = Response(body.model_dump_json(), self.status, content_type="application/json")
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="callboard"'
        if self.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return response


def not_found(what: str, name: object) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {str(name)!r}")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def from_validation(err: ValidationError, where: str) -> ApiError:
    """pydantic's errors, field by field, JSON-safe."""
    details = [
        {"loc": [where, *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in err.errors(include_url=False, include_context=False, include_input=False)
    ]
    fields = "; ".join(f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}" for d in details)
    return ApiError(422, "validation_error", f"invalid {where}: {fields}", details)


def from_callboard(err: CallboardError) -> ApiError:
    if isinstance(err, JobNotFound):
        return ApiError(404, "not_found", str(err))
    if isinstance(err, IllegalTransition):
        details = {"current": err.current, "action": err.action}
        return ApiError(409, "illegal_transition", str(err), details)
    if isinstance(err, InvalidParams):
        return ApiError(422, "invalid_params", str(err), err.errors)
    if isinstance(err, UnknownJobType):
        return ApiError(422, "unknown_job_type", str(err), {"type": err.name})
    if isinstance(err, HookFailed):
        return ApiError(409, "hook_failed", str(err))
    if isinstance(err, AmbiguousSchedule):
        return ApiError(409, "ambiguous_name", str(err), {"name": err.name})
    if isinstance(err, InvalidSchedule):
        return ApiError(422, "invalid_schedule", str(err))
    if isinstance(err, RuntimeNotRunning):
        return ApiError(503, "unavailable", "the runtime is not running")
    if isinstance(err, StorageUnavailable):
        return ApiError(503, "storage_unavailable", str(err), retry_after=err.retry_after)
    if isinstance(err, LookupError):  # the other "no such thing" errors (schedules, ...)
        return ApiError(404, "not_found", str(err))
    return ApiError(422, "invalid_request", str(err))


def install(app: Quart) -> None:
    """Answer every error as JSON: ours, Callboard's, werkzeug's and the unexpected."""

    @app.errorhandler(ApiError)
    async def _api(err: ApiError) -> Response:
        return err.response()

    @app.errorhandler(CallboardError)
    async def _callboard(err: CallboardError) -> Response:
        return from_callboard(err).response()

    @app.errorhandler(HTTPException)
    async def _http(err: HTTPException) -> Response:
        status = err.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = err.description or err.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"the request body is larger than the limit of {limit} bytes"
        return ApiError(status, code, message).response()

    @app.errorhandler(Exception)
    async def _unexpected(err: Exception) -> Response:
        if is_storage_fault(err):  # a database error no store call translated
            log.warning("storage unavailable answering a request: %s", describe(err))
            return from_callboard(unavailable(err)).response()
        log.exception("unexpected error answering a request")
        return ApiError(500, "internal", "internal error; see the server log").response()
