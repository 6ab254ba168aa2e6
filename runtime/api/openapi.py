"""The OpenAPI 3.1 document, generated from the route table and pydantic models."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from runtime.api.errors import ErrorBody
from runtime.api.routing import RouteSpec

REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "Malformed request: the body is not JSON, or nests too deeply",
    401: "No bearer token, or an unknown one",
    403: "The token's role may not do this",
    404: "No such route, job (for this tenant), type, group, queue or schedule",
    409: "Illegal transition: the message names the job's current status",
    413: "The body is larger than the limit (checked before parsing)",
    422: "The body, query or params failed validation, field by field",
}


def _models(specs: Sequence[RouteSpec]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    error: tuple[type[BaseModel], JsonSchemaMode] = (ErrorBody, "serialization")
    wanted = {error: None}
    for spec in specs:
        if spec.body is not None:
            wanted[(spec.body, "validation")] = None
        for model in spec.responses.values():
            if model is not None:
                wanted[(model, "serialization")] = None
    return list(wanted)


def build(specs: Sequence[RouteSpec], *, title: str, version: str) -> dict[str, Any]:
    keys, defs = models_json_schema(_models(specs), ref_template=REF)
    refs = dict(keys)
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(spec: RouteSpec, refs: dict[Any, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": spec.summary,
        "operationId": f"{spec.method.lower()}_{_slug(spec.path)}",
        "tags": [spec.tag],
        "parameters": [*_path_params(spec.path), *_query_params(spec.query)],
        "responses": _responses(spec, refs),
    }
    if spec.description:
        op["description"] = spec.description
    if spec.role is None:
        op["security"] = []
    else:
        op["x-required-role"] = spec.role.value
    if spec.body is not None:
        schema = refs[(spec.body, "validation")]
        content = {"application/json": {"schema": schema}}
        op["requestBody"] = {"required": spec.body_required, "content": content}
    return op


def _responses(spec: RouteSpec, refs: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, model in spec.responses.items():
        entry: dict[str, Any] = {"description": _describe(status, spec)}
        if model is not None:
            schema = refs[(model, "serialization")]
            entry["content"] = {spec.media_type: {"schema": schema}}
        out[str(status)] = entry
    error = {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}
    for status in spec.errors:
        out[str(status)] = {"description": _ERRORS.get(status, "Error"), "content": error}
    return out


def _describe(status: int, spec: RouteSpec) -> str:
    if spec.media_type == "text/event-stream":
        return "A stream of Server-Sent Events; each data line holds this schema as JSON"
    return {200: "OK", 201: "Created", 202: "Accepted: not finished yet", 204: "No content"}.get(
        status, "OK"
    )


def _path_params(path: str) -> Iterable[dict[str, Any]]:
    for name in re.findall(r"\{(\w+)\}", path):
        schema: dict[str, Any] = {"type": "string"}
        if name.endswith("_id") and name != "schedule_id":
            schema["format"] = "uuid"
        yield {"name": name, "in": "path", "required": True, "schema": schema}


def _query_params(model: type[BaseModel] | None) -> Iterable[dict[str, Any]]:
    if model is None:
        return
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            param["description"] = prop["description"]
        param["schema"] = {k: v for k, v in prop.items() if k not in {"description", "title"}}
        yield param


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.removeprefix("/api/v1").lower()).strip("_")
