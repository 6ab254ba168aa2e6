"""``/api/v1/queues``: capacity, pause and (for admins) what is in them."""

from __future__ import annotations

from collections.abc import Iterable

from quart import Response

from runtime.api.auth import Principal, Role
from runtime.api.errors import not_found
from runtime.api.routing import Api, Call, json_response
from runtime.api.schemas import QueueHistory, QueueInfo, QueueList, QueuePatch, QueuesQuery
from runtime.api.state import ApiState
from runtime.domain.status import JobStatus
from runtime.jobs.control import QueueStatistics
from runtime.store.control_reads import finished_history

TAG = "queues"
HISTORY_BUCKET = 10.0  # seconds per bar of the dashboard's chart


def _info(stats: QueueStatistics, principal: Principal, unserved: dict[str, int]) -> QueueInfo:
    info = QueueInfo(name=stats.name, capacity=stats.capacity, paused=stats.paused)
    if principal.role is Role.ADMIN:  # documented: other roles get null counts
        info = QueueInfo.model_validate(
            {name: getattr(stats, name) for name in QueueInfo.model_fields if name != "warning"}
        )
    if stats.name in unserved:  # the count covers every tenant: admins only
        jobs = f"{unserved[stats.name]} jobs" if principal.role is Role.ADMIN else "jobs"
        info.warning = (
            f"{jobs} wait and no live worker serves this queue: "
            f"start one that does (callboard worker --queues {stats.name})"
        )
    return info


def add_routes(api: Api, state: ApiState) -> None:
    rt = state.runtime

    async def one(name: str, principal: Principal) -> Response:
        stats = await rt.statistics(tenant_id=principal.scope)
        if name not in stats:
            raise not_found("queue", name)
        return json_response(_info(stats[name], principal, await rt.unserved_queues()))

    @api.route(
        "GET",
        "/queues",
        summary="List queues",
        tag=TAG,
        query=QueuesQuery,
        responses={200: QueueList},
    )
    async def list_queues(call: Call) -> Response:
        """Every queue with its capacity here and whether it is paused; admins also
        get its counts by status and its outcomes in the last minute, and with
        ``history=MINUTES`` its completed and failed jobs per 10 s over those minutes."""
        minutes = call.query_as(QueuesQuery).history
        stats = await rt.statistics(tenant_id=call.principal.scope)
        unserved = await rt.unserved_queues()
        queues = [_info(s, call.principal, unserved) for s in stats.values()]
        if not minutes or call.principal.role is not Role.ADMIN:
            return json_response(QueueList(queues=queues))
        history = await _history(stats, minutes)
        return json_response(
            QueueList(queues=queues, bucket_seconds=HISTORY_BUCKET, history=history)
        )

    async def _history(names: Iterable[str], minutes: int) -> dict[str, QueueHistory]:
        buckets = int(minutes * 60 / HISTORY_BUCKET)
        # Buckets end at the current one: aligned to the clock, so bars stay put.
        last = int(rt.clock.now() // HISTORY_BUCKET)
        since = (last - buckets + 1) * HISTORY_BUCKET
        rows = await rt.store.read(finished_history, since, HISTORY_BUCKET)
        out = {name: QueueHistory(completed=[0] * buckets, failed=[0] * buckets) for name in names}
        for queue, status, slot, count in rows:
            if queue not in out or not 0 <= slot < buckets:
                continue
            if status == JobStatus.COMPLETED.value:
                out[queue].completed[slot] += count
            elif status in (JobStatus.FAILED.value, JobStatus.TIMEOUT.value):
                out[queue].failed[slot] += count
        return out

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
