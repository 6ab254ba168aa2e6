"""``/api/v1/chords``: fan-out / fan-in (``Runtime.enqueue_chord``)."""

from __future__ import annotations

from typing import Any

from quart import Response

from runtime.api.auth import Role
from runtime.api.errors import ApiError
from runtime.api.routing import Api, Call, json_response
from runtime.api.schemas import ChordCreated, ChordRequest
from runtime.api.state import ApiState
from runtime.domain.errors import CallboardError

TAG = "jobs"
_OPTIONS = ("queue", "priority", "timeout", "max_retries", "description")


def add_routes(api: Api, state: ApiState) -> None:
    rt = state.runtime

    @api.route(
        "POST",
        "/chords",
        summary="Enqueue a chord",
        tag=TAG,
        role=Role.OPERATOR,
        body=ChordRequest,
        responses={201: ChordCreated},
    )
    async def enqueue_chord(call: Call) -> Response:
        """Store a group of jobs of one type and a callback job that runs once they
        all ended, in one transaction. The callback waits ``blocked``; it is
        skipped if a member does not complete, unless ``run_on_failure``."""
        req = call.body_as(ChordRequest)
        rt.registry.get_public(req.type)  # an internal type is unknown here
        rt.registry.get_public(req.callback.type)
        tenant, user = call.principal.tenant_id, call.principal.name
        own: dict[str, Any] = {n: getattr(req.callback, n) for n in _OPTIONS}
        try:
            chord = await rt.enqueue_chord(
                req.type,
                req.params,
                req.callback.type,
                req.callback.params,
                run_on_failure=req.run_on_failure,
                callback_options={**own, "tenant_id": tenant, "user_id": user},  # type: ignore[arg-type]  # the names of EnqueueOptions
                **{n: getattr(req, n) for n in _OPTIONS},
                tenant_id=tenant,
                user_id=user,
            )
        except CallboardError:
            raise
        except ValueError as err:
            raise ApiError(422, "invalid_request", str(err)) from None
        body = ChordCreated.model_construct(
            callback=chord.callback, members=[m.id for m in chord.members]
        )
        headers = {"Location": f"/api/v1/jobs/{chord.callback.id}"}
        return json_response(body, 201, headers)
