"""``/api/v1/queues``: capacity, pause and (for admins) what is in them."""

from __future__ import annotations

from quart import Response

from runtime.api.auth import Principal, Role
from runtime.api.errors import not_found
from runtime.api.routing import Api, Call, json_response
from runtime.api.schemas import QueueInfo, QueueList, QueuePatch
from runtime.api.state import ApiState
from runtime.jobs.control import QueueStatistics

TAG = "queues"


def _info(stats: QueueStatistics, principal: Principal) -> QueueInfo:
    info = QueueInfo(name=stats.name, capacity=stats.capacity, paused=stats.paused)
    if principal.role is Role.ADMIN:  # documented: other roles get null counts
        info = QueueInfo.model_validate(
            {name: getattr(stats, name) for name in QueueInfo.model_fields}
        )
    return info


def add_routes(api: Api, state: ApiState) -> None:
    rt = state.runtime

    async def one(name: str, principal: Principal) -> Response:
        stats = await rt.statistics(tenant_id=principal.scope)
        if name not in stats:
            raise not_found("queue", name)
        return json_response(_info(stats[name], principal))

    @api.route("GET", "/queues", summary="List queues", tag=TAG, responses={200: QueueList})
    async def list_queues(call: Call) -> Response:
        """Every queue with its capacity here and whether it is paused; admins also
        get its counts by status and its outcomes in the last minute."""
        stats = await rt.statistics(tenant_id=call.principal.scope)
        queues = [_info(s, call.principal) for s in stats.values()]
        return json_response(QueueList(queues=queues))

    @api.route("GET", "/queues/{name}", summary="Read a queue", tag=TAG, responses={200: QueueInfo})
    async def get_queue(call: Call) -> Response:
        """One queue (see ``GET /queues``)."""
        return await one(call.path["name"], call.principal)

    @api.route(
        "POST",
        "/queues/{name}/pause",
        summary="Pause a queue",
        tag=TAG,
        role=Role.ADMIN,
        responses={200: QueueInfo},
    )
    async def pause_queue(call: Call) -> Response:
        """Stop starting jobs of this queue (running ones finish). Survives restarts."""
        await rt.pause_queue(call.path["name"])
        return await one(call.path["name"], call.principal)

    @api.route(
        "POST",
        "/queues/{name}/resume",
        summary="Resume a queue",
        tag=TAG,
        role=Role.ADMIN,
        responses={200: QueueInfo},
    )
    async def resume_queue(call: Call) -> Response:
        """Start jobs of this queue again."""
        await rt.resume_queue(call.path["name"])
        return await one(call.path["name"], call.principal)

    @api.route(
        "PATCH",
        "/queues/{name}",
        summary="Change a queue's capacity",
        tag=TAG,
        role=Role.ADMIN,
        body=QueuePatch,
        responses={200: QueueInfo},
    )
    async def patch_queue(call: Call) -> Response:
        """Set how many jobs of this queue run at once in this process (not persisted)."""
        rt.set_queue_capacity(call.path["name"], call.body_as(QueuePatch).capacity)
        return await one(call.path["name"], call.principal)
