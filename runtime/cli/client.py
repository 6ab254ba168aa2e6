"""The CLI's HTTP client: JSON calls and Server-Sent Event streams, with exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

URL_ENV = "CALLBOARD_URL"
TOKEN_ENV = "CALLBOARD_TOKEN"
URL_DEFAULT = "http://127.0.0.1:8000"
TIMEOUT_DEFAULT = 30.0
RECONNECTS_DEFAULT = 5

EXIT_OK = 0
EXIT_JOB_FAILED = 1  # the job ended, but not completed
EXIT_USAGE = 2  # bad arguments, or input the server refused (400, 413, 422)
EXIT_AUTH = 3  # 401, 403
EXIT_NOT_FOUND = 4  # 404
EXIT_CONFLICT = 5  # 409: the job's status does not allow it
EXIT_UNAVAILABLE = 6  # no server, or it failed (5xx)
EXIT_TIMEOUT = 124  # waited, and the job is not finished yet
EXIT_INTERRUPTED = 130

_EXITS = {400: EXIT_USAGE, 401: EXIT_AUTH, 403: EXIT_AUTH, 404: EXIT_NOT_FOUND}
_EXITS.update({409: EXIT_CONFLICT, 413: EXIT_USAGE, 422: EXIT_USAGE})


class ClientError(Exception):
    """A call that did not succeed, with the exit code it means."""

    def __init__(self, message: str, exit_code: int, body: Any = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.body = body


@dataclass(frozen=True, slots=True)
class SseEvent:
    kind: str
    data: Any
    id: str | None


class ApiClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = TIMEOUT_DEFAULT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        try:
            self._http = httpx.Client(
                base_url=self.url, headers=headers, timeout=timeout, transport=transport
            )
        except httpx.InvalidURL as err:  # not an HTTPError: say so, don't crash
            raise ClientError(f"invalid --url {url!r}: {err}", EXIT_USAGE) from None

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """``(status, JSON body)`` of a 2xx answer; :class:`ClientError` otherwise."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            response = self._http.request(
                method, "/api/v1" + path, json=json_body, params=query, **extra
            )
        except httpx.HTTPError as err:
            raise ClientError(f"cannot reach {self.url}: {err}", EXIT_UNAVAILABLE) from None
        except (httpx.InvalidURL, UnicodeError) as err:  # e.g. a host IDNA cannot encode
            raise ClientError(f"invalid --url {self.url!r}: {err}", EXIT_USAGE) from None
        body = _body(response)
        if response.is_success:
            return response.status_code, body
        raise _error(response.status_code, body)

    def events(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        resume_on_end: bool = False,
    ) -> Iterator[SseEvent]:
        """Server-Sent Events from ``path``, reconnecting with ``Last-Event-ID``.

        With ``resume_on_end``, a stream the server ends cleanly is resumed
        too (the caller stops reading once it has what it waits for): a
        stopping server closes streams cleanly, and that is no answer."""
        last_id: str | None = None
        failures = 0
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                for event in self._stream(path, params, headers):
                    # Only a new event is progress: a server that replays the same
                    # one and closes again must not keep the reconnects unbounded.
                    if event.id is not None and event.id != last_id:
                        failures = 0
                    last_id = event.id or last_id
                    yield event
                if not resume_on_end:
                    return  # the server ended the stream
                error = "the server ended it"
            except httpx.HTTPError as err:
                error = str(err) or type(err).__name__
            except (httpx.InvalidURL, UnicodeError) as err:
                raise ClientError(f"invalid --url {self.url!r}: {err}", EXIT_USAGE) from None
            failures += 1
            if failures > RECONNECTS_DEFAULT:
                raise ClientError(f"event stream lost: {error}", EXIT_UNAVAILABLE) from None

    def _stream(
        self, path: str, params: Mapping[str, Any] | None, headers: dict[str, str]
    ) -> Iterator[SseEvent]:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        timeout = httpx.Timeout(TIMEOUT_DEFAULT, read=None)
        with self._http.stream(
            "GET", "/api/v1" + path, params=query, headers=headers, timeout=timeout
        ) as response:
            if not response.is_success:
                response.read()
                raise _error(response.status_code, _body(response))
            yield from parse_sse(response.iter_lines())


def parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    """Events of an SSE body; a frame that only sets ``retry`` comes as kind ``retry``
    (the server sends it first: the stream is live from then on)."""
    kind, event_id, retry = "message", None, None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseEvent(kind, _json("\n".join(data)), event_id)
            elif retry is not None:
                yield SseEvent("retry", retry, None)
            kind, data, event_id, retry = "message", [], None, None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
            elif name == "retry":
                retry = value


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _error(status: int, body: Any) -> ClientError:
    message = body.get("message") if isinstance(body, dict) else None
    code = _EXITS.get(status, EXIT_UNAVAILABLE)
    return ClientError(f"HTTP {status}: {message or body or 'error'}", code, body)
