"""Declaring routes once: the Quart view, its checks and its OpenAPI entry.

Every route is declared with :meth:`Api.route`, naming its role, its body
and query models and its responses. The wrapper authenticates, checks the
role, parses and validates the body and the query; the same declaration
feeds :mod:`runtime.api.openapi`, so the document cannot drift from the code.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel, ValidationError
from quart import Quart, Response, request

from runtime.api.auth import Authenticator, Principal, Role
from runtime.api.errors import ApiError, from_validation, not_found
from runtime.domain.storable import SURROGATE, text_problem

PREFIX = "/api/v1"
JSON_DEPTH_MAX = 32  # nesting of request bodies; params deeper than this are refused

M = TypeVar("M", bound=BaseModel)
PUBLIC = Principal("public", None, Role.VIEWER)  # the caller of routes that need no token


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route as the OpenAPI document describes it."""

    method: str
    path: str  # OpenAPI form, prefix included: /api/v1/jobs/{job_id}
    summary: str
    tag: str
    role: Role | None  # None: no token needed
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: Mapping[int, type[BaseModel] | None]
    errors: tuple[int, ...]
    media_type: str = "application/json"
    description: str = ""
    body_required: bool = True  # else an empty body reads as ``{}``


@dataclass(slots=True)
class Call:
    """What a route handler receives: who calls, and the validated input."""

    principal: Principal
    path: dict[str, str]
    body: BaseModel | None = None
    query: BaseModel | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case

    def body_as(self, model: type[M]) -> M:
        assert isinstance(self.body, model)
        return self.body

    def query_as(self, model: type[M]) -> M:
        assert isinstance(self.query, model)
        return self.query

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def job_id(self) -> uuid.UUID:
        """The ``{job_id}`` of the path; a malformed id is simply not found."""
        text = self.path["job_id"]
        try:
            return uuid.UUID(text)
        except ValueError:
            raise not_found("job with id", text) from None


Handler = Callable[[Call], Awaitable[Response]]


class Api:
    """The route table of one app."""

    def __init__(self, app: Quart, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth
        self.specs: list[RouteSpec] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        role: Role | None = Role.VIEWER,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        responses: Mapping[int, type[BaseModel] | None],
        errors: tuple[int, ...] = (),
        media_type: str = "application/json",
        prefix: str = PREFIX,
        body_required: bool = True,
    ) -> Callable[[Handler], Handler]:
        full = prefix + path

        def register(handler: Handler) -> Handler:
            spec = RouteSpec(
                method=method,
                path=full,
                summary=summary,
                tag=tag,
                role=role,
                body=body,
                query=query,
                responses=responses,
                errors=_errors(errors, role, body, query, full),
                media_type=media_type,
                description=(handler.__doc__ or "").strip(),
                body_required=body_required,
            )
            self.specs.append(spec)
            self.app.add_url_rule(
                _quart_path(full),
                endpoint=f"{method.lower()} {full}",
                view_func=self._view(spec, handler),
                methods=[method],
            )
            return handler

        return register

    def _view(self, spec: RouteSpec, handler: Handler) -> Callable[..., Awaitable[Response]]:
        async def view(**path: str) -> Response:
            principal = PUBLIC
            if spec.role is not None:
                principal = self.auth.authenticate(request.headers.get("Authorization"))
                principal.require(spec.role)
            headers = {k.lower(): v for k, v in request.headers.items()}
            for name, value in path.items():
                if text_problem(value) is not None:  # no store holds such an id or name
                    raise not_found(name.replace("_", " "), value)
            call = Call(principal, dict(path), headers=headers)
            if spec.query is not None:
                args = _query_args()
                for name, value in args.items():
                    _check_field(value, ["query", name])
                call.query = _validate(spec.query, args, "query")
            if spec.body is not None:
                data = await request.get_data(False, False, False)
                given = parse_json(data) if data.strip() or spec.body_required else {}
                call.body = _validate(spec.body, given, "body")
            return await handler(call)

        return view


def _errors(
    given: tuple[int, ...],
    role: Role | None,
    body: type[BaseModel] | None,
    query: type[BaseModel] | None,
    path: str,
) -> tuple[int, ...]:
    codes = set(given)
    if role is not None:
        codes |= {401, 403}
    if body is not None:
        codes |= {400, 413, 422}
    if query is not None:
        codes.add(422)
    if "{" in path:
        codes.add(404)
    return tuple(sorted(codes))


def _quart_path(path: str) -> str:
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def _query_args() -> dict[str, str]:
    return {key: request.args.getlist(key)[-1] for key in request.args}


def _validate(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise from_validation(err, where) from None


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes) -> Any:
    """A request body as JSON: 400 if it is not, or nests deeper than ``JSON_DEPTH_MAX``."""
    if not data.strip():
        raise ApiError(400, "malformed_json", "the request body is empty; send a JSON object")
    try:
        value = json.loads(data, parse_float=_finite, parse_constant=_no_constants)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as err:  # also bad UTF-8, and integers too long to convert
        raise ApiError(400, "malformed_json", f"the request body is not JSON: {err}") from None
    _check_depth(value)
    return value


def _too_deep() -> ApiError:
    return ApiError(
        400, "nesting_too_deep", f"the request body nests deeper than {JSON_DEPTH_MAX} levels"
    )


def _check_depth(value: Any) -> None:
    """Refuse nesting beyond ``JSON_DEPTH_MAX``, strings that are not Unicode (400)
    and strings no store keeps (422), naming where."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            _check_text(item, where)
            continue
        if isinstance(item, dict):
            children: Any = item.items()
            for key in item:
                _check_text(key, where)
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            continue
        if len(where) >= JSON_DEPTH_MAX:
            raise _too_deep()
        stack.extend((child, [*where, at]) for at, child in children)


def _check_text(text: str, where: list[str | int]) -> None:
    if text.isascii() and "\x00" not in text:
        return
    problem = text_problem(text)
    if problem == SURROGATE:  # the body is not Unicode text: malformed, as bad UTF-8 is
        place = ".".join(str(p) for p in where) or "the top level"
        raise ApiError(
            400,
            "malformed_json",
            f"the request body holds an unpaired surrogate (\\uD800-\\uDFFF) at {place}",
        )
    if problem is not None:
        _check_field(text, ["body", *where])


def _check_field(text: str, loc: list[str | int]) -> None:
    """422 for a string of a request that no store keeps (a NUL character)."""
    problem = text_problem(text)
    if problem is None:
        return
    where = ".".join(str(p) for p in loc)
    message = f"{where} {problem}, which cannot be stored"
    details = [{"loc": loc, "msg": message, "type": "unstorable"}]
    raise ApiError(422, "validation_error", f"invalid {loc[0]}: {message}", details)


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``payload`` (a model, or plain data with models inside) as a JSON response."""
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json()
    else:
        body = pydantic_core.to_json(payload).decode()
    return Response(body, status, headers=dict(headers or {}), content_type="application/json")
