"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from quart import Response
from sqlalchemy import text
from sqlalchemy.engine import Connection

from runtime.api import metrics, openapi
from runtime.api.auth import Role
from runtime.api.routing import PREFIX, Api, Call, json_response
from runtime.api.schemas import Health
from runtime.api.state import ApiState

TAG = "system"
VERSION = "1"


def _ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


def add_routes(api: Api, state: ApiState) -> None:
    rt = state.runtime
    document: dict[str, Any] = {}

    @api.route(
        "GET",
        "/healthz",
        summary="Liveness",
        tag=TAG,
        role=None,
        responses={200: Health},
        prefix="",
    )
    async def healthz(call: Call) -> Response:
        """200 while the process serves requests."""
        return json_response(Health(status="ok"))

    @api.route(
        "GET",
        "/readyz",
        summary="Readiness",
        tag=TAG,
        role=None,
        responses={200: Health, 503: Health},
        prefix="",
    )
    async def readyz(call: Call) -> Response:
        """200 when the runtime runs and its database answers; 503 otherwise."""
        if not state.ready:
            status = "stopping" if state.events.closed else "starting"
            return json_response(Health(status=status), 503)
        try:
            await rt.store.read(_ping)
        except Exception as err:  # any failure means "not ready", never a 500
            checks = {"database": type(err).__name__}
            return json_response(Health(status="unavailable", checks=checks), 503)
        return json_response(Health(status="ok", checks={"database": "ok"}))

    @api.route(
        "GET",
        "/metrics",
        summary="Prometheus metrics",
        tag=TAG,
        role=Role.ADMIN,
        responses={200: None},
        media_type="text/plain",
        prefix="",
    )
    async def prometheus(call: Call) -> Response:
        """Counters, gauges and histograms in the Prometheus text format."""
        body = await state.metrics.render(rt)
        return Response(body, 200, content_type=metrics.CONTENT_TYPE)

    async def openapi_json(call: Call) -> Response:
        """The OpenAPI 3.1 document, generated from the routes and their models."""
        if not document:
            document.update(openapi.build(api.specs, title="Callboard", version=VERSION))
        return json_response(document)

    for prefix in (PREFIX, ""):
        api.route(
            "GET",
            "/openapi.json",
            summary="This API's OpenAPI document",
            tag=TAG,
            role=None,
            responses={200: None},
            prefix=prefix,
        )(openapi_json)
