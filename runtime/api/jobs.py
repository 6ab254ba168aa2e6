"""``/api/v1/jobs``: enqueue, list, read, wait, control, delete, logs.

Every read and every change names the caller's tenant (``principal.scope``;
None for admins), so another tenant's job is simply not found.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import httpx
from quart import Response

from runtime.api.auth import Role
from runtime.api.errors import ApiError
from runtime.api.hook_policy import HookPolicy, HookRefused
from runtime.api.routing import Api, Call, json_response
from runtime.api.schemas import (
    CHILDREN_SHOWN,
    CancelRequest,
    ChildSummary,
    ControlRequest,
    EnqueueRequest,
    JobDetail,
    JobLog,
    JobPage,
    ListJobsQuery,
    LogsQuery,
    WaitQuery,
)
from runtime.api.state import ApiState
from runtime.domain.errors import CallboardError
from runtime.domain.models import Job

TAG = "jobs"
Control = Callable[..., Awaitable[Job]]


def add_routes(api: Api, state: ApiState) -> None:
    rt = state.runtime

    @api.route(
        "POST",
        "/jobs",
        summary="Enqueue a job",
        tag=TAG,
        role=Role.OPERATOR,
        body=EnqueueRequest,
        responses={201: Job, 200: Job},
    )
    async def enqueue(call: Call) -> Response:
        """Store a job of a registered type. 201 with the new job; 200 with the existing
        one when its idempotency key (or, for a unique type, equal params) is known."""
        req = call.body_as(EnqueueRequest)
        for name in _type_names(req):
            rt.registry.get_public(name)  # an internal type is unknown here
        if req.status_hook is not None:
            _check_hook(state.config.hook_policy, req.status_hook)
        tenant = call.principal.tenant_id
        if req.idempotency_key is not None:
            found = await rt.get_by_idempotency_key(req.idempotency_key, tenant_id=tenant)
            if found is not None:
                return json_response(found, 200)
        before = rt.clock.now()
        try:
            if req.steps is not None:
                job = await rt.enqueue_steps(
                    [step.model_dump() for step in req.steps],
                    step_defaults=req.step_defaults,
                    idempotency_key=req.idempotency_key,
                    depends_on=req.depends_on,
                    run_on_failure=req.run_on_failure,
                    **_options(req),
                    tenant_id=tenant,
                    user_id=call.principal.name,
                )
            else:
                assert req.type is not None  # the request model requires type or steps
                job = await rt.enqueue(
                    req.type,
                    req.params,
                    idempotency_key=req.idempotency_key,
                    depends_on=req.depends_on,
                    run_on_failure=req.run_on_failure,
                    **_options(req),
                    tenant_id=tenant,
                    user_id=call.principal.name,
                )
        except CallboardError:
            raise
        except ValueError as err:
            raise ApiError(422, "invalid_request", str(err)) from None
        created = job.created_at is None or job.created_at.timestamp() >= before
        headers = {"Location": f"/api/v1/jobs/{job.id}"}
        return json_response(job, 201 if created else 200, headers)

    @api.route(
        "GET", "/jobs", summary="List jobs", tag=TAG, query=ListJobsQuery, responses={200: JobPage}
    )
    async def list_jobs(call: Call) -> Response:
        """Jobs matching every filter, newest first, one page at a time."""
        q = call.query_as(ListJobsQuery)
        filters: dict[str, Any] = {
            "status": q.statuses,
            "type": q.type,
            "group": q.group,
            "queue": q.queue,
            "schedule_id": q.schedule_id,
            "idempotency_key": q.idempotency_key,
            "search": q.search,
            "parent_id": q.parent_id,
            "tenant_id": call.principal.narrowed(q.tenant),
        }
        found: dict[str, Any] = {}

        async def read(name: str, method: Callable[..., Awaitable[Any]], **extra: Any) -> None:
            found[name] = await method(**filters, **extra)

        async with anyio.create_task_group() as tg:  # the page and its count, side by side
            offset = (q.page - 1) * q.page_size
            tg.start_soon(partial(read, "jobs", rt.list, limit=q.page_size, offset=offset))
            tg.start_soon(partial(read, "total", rt.count))
        page = JobPage.model_construct(page=q.page, page_size=q.page_size, **found)
        return json_response(page)

    @api.route("GET", "/jobs/{job_id}", summary="Read a job", tag=TAG, responses={200: JobDetail})
    async def get_job(call: Call) -> Response:
        """The job's current snapshot, with the ids of the jobs it depends on and
        its first children (ids and statuses; all of them: ``?parent_id=``)."""
        job = await rt.get(call.job_id(), tenant_id=call.principal.scope)
        depends_on = await rt.dependencies(job.id)
        children = await rt.children(job.id, limit=CHILDREN_SHOWN)
        count = len(children)
        if count == CHILDREN_SHOWN:
            count = await rt.count_children(job.id)
        shown = [ChildSummary(id=c.id, status=c.status) for c in children]
        detail = JobDetail.model_construct(
            **dict(job), depends_on=depends_on, children=shown, children_count=count
        )
        return json_response(detail)

    @api.route(
        "DELETE",
        "/jobs/{job_id}",
        summary="Delete a finished job",
        tag=TAG,
        role=Role.OPERATOR,
        responses={204: None},
        errors=(409,),
    )
    async def delete_job(call: Call) -> Response:
        """Delete a finished job (409 while it is not finished)."""
        await rt.delete(call.job_id(), tenant_id=call.principal.scope)
        return Response(b"", 204)

    actions: dict[str, tuple[Control, str]] = {
        "cancel": (rt.cancel, "Cancel a job: pending ends at once, running via canceling."),
        "suspend": (rt.suspend, "Suspend a job: pending parks, running stops at a checkpoint."),
        "resume": (rt.resume, "Resume a suspended job from its last checkpoint."),
        "retry": (rt.retry, "Run a failed, timed-out or canceled job again (next attempt)."),
    }
    for action, (method, doc) in actions.items():
        _add_control(api, action, method, doc)

    @api.route(
        "GET",
        "/jobs/{job_id}/wait",
        summary="Wait for a job to finish",
        tag=TAG,
        query=WaitQuery,
        responses={200: Job, 202: Job},
    )
    async def wait_job(call: Call) -> Response:
        """200 with the finished job, or 202 with its current state after ``timeout`` s."""
        q = call.query_as(WaitQuery)
        scope = call.principal.scope
        try:
            return json_response(await rt.wait(call.job_id(), timeout=q.timeout, tenant_id=scope))
        except TimeoutError:
            return json_response(await rt.get(call.job_id(), tenant_id=scope), 202)

    @api.route(
        "GET",
        "/jobs/{job_id}/logs",
        summary="Read a job's log",
        tag=TAG,
        query=LogsQuery,
        responses={200: JobLog},
    )
    async def job_logs(call: Call) -> Response:
        """The job's log, oldest first: its handler's records and its status changes."""
        q = call.query_as(LogsQuery)
        try:
            level = _log_level(q.level)
            entries = await rt.logs(
                call.job_id(),
                since=q.since,
                level=level,
                limit=q.limit,
                tenant_id=call.principal.scope,
            )
        except CallboardError:
            raise
        except ValueError as err:
            raise ApiError(422, "validation_error", str(err)) from None
        return json_response(JobLog.model_construct(job_id=call.job_id(), records=entries))


LOG_LEVEL_MAX = 1_000_000  # far above CRITICAL (50), far below the store's integers


def _log_level(given: str | None) -> int | str | None:
    """A level number (ASCII digits, bounded) or a name left for the runtime to look up."""
    # str.isdigit() also accepts "²" and other digits int() refuses.
    if given is None or not given.isascii() or not given.isdigit():
        return given
    number = int(given)
    if number > LOG_LEVEL_MAX:
        raise ValueError(f"level must be a name or a number up to {LOG_LEVEL_MAX}")
    return number


def _add_control(api: Api, action: str, method: Control, doc: str) -> None:
    body = CancelRequest if action == "cancel" else ControlRequest

    async def control(call: Call) -> Response:
        given = call.body.model_dump(exclude_none=True) if call.body is not None else {}
        try:
            job = await method(call.job_id(), tenant_id=call.principal.scope, **given)
        except CallboardError:
            raise
        except ValueError as err:  # e.g. a reason the store cannot keep
            raise ApiError(422, "invalid_request", str(err)) from None
        return json_response(job)

    control.__name__ = f"{action}_job"
    control.__doc__ = doc
    api.route(
        "POST",
        f"/jobs/{{job_id}}/{action}",
        summary=f"{action.capitalize()} a job",
        tag=TAG,
        role=Role.OPERATOR,
        body=body,
        body_required=False,
        responses={200: Job},
        errors=(409,),
    )(control)


def _check_hook(policy: HookPolicy, url: str) -> None:
    """422, as a field error, for a hook URL the policy refuses by its text."""
    try:
        policy.check_text(httpx.URL(url).raw_host.decode("ascii"))
    except HookRefused as err:
        msg = f"not allowed: {err} (this server sends hooks to public addresses only)"
        details = [{"loc": ["body", "status_hook"], "msg": msg, "type": "hook_refused"}]
        message = f"invalid body: status_hook: {msg}"
        raise ApiError(422, "validation_error", message, details) from None


def _options(req: EnqueueRequest) -> dict[str, Any]:
    fields = (
        "queue",
        "priority",
        "delay",
        "at",
        "timeout",
        "max_retries",
        "status_hook",
        "retry_delay",
        "description",
    )
    options = {name: getattr(req, name) for name in fields}
    if req.lock_key is not None:
        options["lock_key"] = req.lock_key
    return options


def _type_names(req: EnqueueRequest) -> list[str]:
    """The job types a request names: its own, or its steps'."""
    if req.steps is not None:
        return [step.type for step in req.steps]
    return [req.type] if req.type is not None else []
