"""``/api/v1/job-types`` and ``/api/v1/job-groups``: what can be enqueued.

Internal types (status hook deliveries) are left out, as if unknown.
"""

from __future__ import annotations

from quart import Response

from runtime.api.errors import not_found
from runtime.api.routing import Api, Call, json_response
from runtime.api.schemas import JobGroupInfo, JobGroupList, JobTypeInfo, JobTypeList
from runtime.api.state import ApiState
from runtime.domain.errors import UnknownJobType
from runtime.jobs.registry import JobType

TAG = "catalogue"
_OPTIONS = ("version", "lock", "max_concurrency", "rate_limit", "unique", "suspendable")


def describe(job_type: JobType) -> JobTypeInfo:
    info = job_type.describe()
    info.update({name: getattr(job_type, name) for name in _OPTIONS if hasattr(job_type, name)})
    return JobTypeInfo.model_validate(info)


def add_routes(api: Api, state: ApiState) -> None:
    registry = state.runtime.registry

    @api.route("GET", "/job-types", summary="List job types", tag=TAG, responses={200: JobTypeList})
    async def list_types(call: Call) -> Response:
        """Every registered job type with its defaults and params JSON schema."""
        return json_response(JobTypeList(types=[describe(t) for t in registry.public_types()]))

    @api.route(
        "GET", "/job-types/{name}", summary="Read a job type", tag=TAG, responses={200: JobTypeInfo}
    )
    async def get_type(call: Call) -> Response:
        """One job type, with the JSON schema its params must match."""
        try:
            return json_response(describe(registry.get_public(call.path["name"])))
        except UnknownJobType:
            raise not_found("job type", call.path["name"]) from None

    @api.route(
        "GET", "/job-groups", summary="List job groups", tag=TAG, responses={200: JobGroupList}
    )
    async def list_groups(call: Call) -> Response:
        """Every job group with the names of its types."""
        groups = [_group(g.name) for g in registry.public_groups()]
        return json_response(JobGroupList(groups=groups))

    @api.route(
        "GET",
        "/job-groups/{name}",
        summary="Read a job group",
        tag=TAG,
        responses={200: JobGroupInfo},
    )
    async def get_group(call: Call) -> Response:
        """One job group with the names of its types."""
        name = call.path["name"]
        if name not in {g.name for g in registry.public_groups()}:
            raise not_found("job group", name)
        return json_response(_group(name))

    def _group(name: str) -> JobGroupInfo:
        group = next(g for g in registry.groups() if g.name == name)
        types = [t.name for t in registry.public_types() if t.group == name]
        return JobGroupInfo(name=group.name, description=group.description, types=types)
