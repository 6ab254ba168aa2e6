"""``/api/v1/schedules``: schedules that make jobs (date, interval, cron, calendar).

Schedules belong to a tenant: everyone reads the schedules of their tenant
(admins: all), and operators create, change, trigger and remove them (admins:
any). A schedule's jobs carry its tenant and the user who created it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field
from quart import Response

from runtime.api.auth import Role
from runtime.api.errors import ApiError
from runtime.api.routing import Api, Call, json_response
from runtime.api.schemas import NAME_MAX, StepRequest, _Request
from runtime.api.state import ApiState
from runtime.domain.errors import CallboardError
from runtime.domain.models import Job
from runtime.schedules.model import Misfire, Overlap, Schedule
from runtime.workflows.step_specs import STEPS_MAX

TAG = "schedules"
SCHEDULE_PAGE_SIZE_MAX = 200

CalendarValue = int | str | list[int | str]


class ScheduleCreate(_Request):
    """``POST /schedules``: exactly one of ``every``, ``cron``, ``at`` and ``fields``;
    ``job_type`` (with ``params``) or ``steps`` (with ``step_defaults``)."""

    job_type: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    params: dict[str, Any] | None = None
    steps: list[StepRequest] | None = Field(
        default=None,
        min_length=1,
        max_length=STEPS_MAX,
        description="each firing makes a multi-step job of these steps",
    )
    step_defaults: dict[str, Any] | None = None
    every: str | float | None = Field(
        default=None, description='"15 minutes", "2 days", "continuous", or seconds'
    )
    cron: str | None = Field(default=None, max_length=NAME_MAX)
    cron_seconds: Literal["first", "last"] | None = Field(
        default=None, description="where a six-field cron has its seconds (required for six)"
    )
    at: AwareDatetime | None = None
    fields: dict[str, CalendarValue] | None = Field(
        default=None, description='calendar fields, e.g. {"day_of_week": "mon-fri", "hour": 9}'
    )
    tz: str = Field(default="UTC", max_length=64)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    overlap: Overlap | None = None
    misfire: Misfire | None = None
    max_catch_up: int | None = Field(default=None, ge=1, le=100_000)
    paused: bool = False
    queue: str | None = Field(
        default=None, min_length=1, max_length=NAME_MAX, description="its jobs' queue"
    )


class SchedulePatch(_Request):
    paused: bool


class ScheduleQuery(_Request):
    job_type: str | None = Field(default=None, max_length=NAME_MAX)
    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=50, ge=1, le=SCHEDULE_PAGE_SIZE_MAX)


class SchedulePage(BaseModel):
    schedules: list[Schedule]
    page: int
    page_size: int


def add_routes(api: Api, state: ApiState) -> None:
    rt = state.runtime

    @api.route(
        "GET",
        "/schedules",
        summary="List schedules",
        tag=TAG,
        query=ScheduleQuery,
        responses={200: SchedulePage},
    )
    async def list_schedules(call: Call) -> Response:
        """Schedules of the caller's tenant (admins: all), by name."""
        q = call.query_as(ScheduleQuery)
        found = await rt.schedules(
            tenant_id=call.principal.scope,
            job_type=q.job_type,
            limit=q.page_size,
            offset=(q.page - 1) * q.page_size,
        )
        page = SchedulePage(schedules=found, page=q.page, page_size=q.page_size)
        return json_response(page)

    @api.route(
        "POST",
        "/schedules",
        summary="Create a schedule",
        tag=TAG,
        role=Role.OPERATOR,
        body=ScheduleCreate,
        responses={201: Schedule},
    )
    async def create_schedule(call: Call) -> Response:
        """Store a schedule; it makes jobs of ``job_type`` with ``params`` on its slots."""
        req = call.body_as(ScheduleCreate)
        jobs = {"job_type", "params", "steps", "step_defaults"}
        options = req.model_dump(exclude=jobs, exclude_none=True)
        names = [s.type for s in req.steps] if req.steps is not None else [req.job_type]
        for name in names:
            if name is not None:
                rt.registry.get_public(name)  # an internal type is unknown here
        try:
            schedule = await rt.add_schedule(
                req.job_type,
                req.params if req.params is not None or req.steps is not None else {},
                steps=[s.model_dump() for s in req.steps] if req.steps is not None else None,
                step_defaults=req.step_defaults,
                tenant_id=call.principal.tenant_id,
                user_id=call.principal.name,
                **options,
            )
        except CallboardError:
            raise
        except (ValueError, TypeError) as err:
            raise ApiError(422, "invalid_schedule", str(err)) from None
        headers = {"Location": f"/api/v1/schedules/{schedule.id}"}
        return json_response(schedule, 201, headers)

    @api.route(
        "GET", "/schedules/{schedule_id}", summary="Read a schedule", tag=TAG,
        responses={200: Schedule},
    )  # fmt: skip
    async def get_schedule(call: Call) -> Response:
        """One schedule, by id or name."""
        key = call.path["schedule_id"]
        return json_response(await rt.get_schedule(key, tenant_id=call.principal.scope))

    @api.route(
        "PATCH",
        "/schedules/{schedule_id}",
        summary="Pause or resume a schedule",
        tag=TAG,
        role=Role.OPERATOR,
        body=SchedulePatch,
        responses={200: Schedule},
    )
    async def patch_schedule(call: Call) -> Response:
        """Set ``paused``: a paused schedule makes no jobs; resuming skips passed slots."""
        key, scope = call.path["schedule_id"], call.principal.scope
        if call.body_as(SchedulePatch).paused:
            return json_response(await rt.pause_schedule(key, tenant_id=scope))
        return json_response(await rt.resume_schedule(key, tenant_id=scope))

    @api.route(
        "DELETE",
        "/schedules/{schedule_id}",
        summary="Remove a schedule",
        tag=TAG,
        role=Role.OPERATOR,
        responses={204: None},
    )
    async def remove_schedule(call: Call) -> Response:
        """Delete the schedule; the jobs it made stay."""
        await rt.remove_schedule(call.path["schedule_id"], tenant_id=call.principal.scope)
        return Response(b"", 204)

    for action in ("pause", "resume"):
        _add_pause(api, state, action)

    @api.route(
        "POST",
        "/schedules/{schedule_id}/trigger",
        summary="Run a schedule now",
        tag=TAG,
        role=Role.OPERATOR,
        responses={201: Job},
    )
    async def trigger_schedule(call: Call) -> Response:
        """Make one job of the schedule now, outside its slots (also when paused)."""
        key = call.path["schedule_id"]
        job = await rt.trigger_schedule(key, tenant_id=call.principal.scope)
        return json_response(job, 201, {"Location": f"/api/v1/jobs/{job.id}"})


def _add_pause(api: Api, state: ApiState, action: str) -> None:
    rt = state.runtime
    method = rt.pause_schedule if action == "pause" else rt.resume_schedule

    async def change(call: Call) -> Response:
        return json_response(await method(call.path["schedule_id"], tenant_id=call.principal.scope))

    change.__name__ = f"{action}_schedule"
    change.__doc__ = "Stop making jobs." if action == "pause" else "Make jobs again."
    api.route(
        "POST",
        f"/schedules/{{schedule_id}}/{action}",
        summary=f"{action.capitalize()} a schedule",
        tag=TAG,
        role=Role.OPERATOR,
        responses={200: Schedule},
    )(change)
