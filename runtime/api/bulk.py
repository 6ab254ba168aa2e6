"""``POST /api/v1/jobs/bulk/{retry,cancel,delete}``: one action on every job matching
a filter, within the caller's tenant, each job by its own compare-and-set."""

from __future__ import annotations

from quart import Response

from runtime.api.auth import Role
from runtime.api.errors import ApiError
from runtime.api.routing import Api, Call, json_response
from runtime.api.schemas import BulkRequest, BulkResponse
from runtime.api.state import ApiState
from runtime.jobs.bulk import BulkAction, bulk_control

TAG = "jobs"
_DOCS = {
    BulkAction.RETRY: "Run again every failed, timed-out or canceled job matching the filters.",
    BulkAction.CANCEL: "Cancel every unfinished job matching the filters.",
    BulkAction.DELETE: "Delete every finished job matching the filters.",
}


def add_routes(api: Api, state: ApiState) -> None:
    for action in BulkAction:
        _add(api, state, action)


def _add(api: Api, state: ApiState, action: BulkAction) -> None:
    rt = state.runtime

    async def bulk(call: Call) -> Response:
        req = call.body_as(BulkRequest)
        filters = req.model_dump(
            include={"type", "group", "queue", "schedule_id", "idempotency_key", "search"}
        )
        filters["status"] = req.statuses
        filters["tenant_id"] = call.principal.narrowed(req.tenant)
        if req.reason is not None and action is not BulkAction.CANCEL:
            raise ApiError(422, "validation_error", "reason goes with cancel only")
        done = await bulk_control(
            rt, action, filters, limit=req.limit, dry_run=req.dry_run, reason=req.reason
        )
        return json_response(
            BulkResponse(
                action=action.value,
                dry_run=req.dry_run,
                matched=done.matched,
                selected=done.selected,
                changed=done.changed,
                skipped=done.skipped,
                skipped_by_status=done.skipped_by_status,
                remaining=done.remaining,
            )
        )

    bulk.__name__ = f"bulk_{action.value}"
    bulk.__doc__ = (
        f"{_DOCS[action]} At most ``limit`` jobs, newest first; a job whose status "
        "changed meanwhile so that the action is illegal is skipped and counted "
        "(``skipped_by_status``). ``dry_run`` only counts."
    )
    api.route(
        "POST",
        f"/jobs/bulk/{action.value}",
        summary=f"{action.value.capitalize()} every job matching a filter",
        tag=TAG,
        role=Role.OPERATOR,
        body=BulkRequest,
        responses={200: BulkResponse},
    )(bulk)
