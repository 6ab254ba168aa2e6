"""Schedules that fire multi-step jobs: a schedule whose ``job_type`` is
``callboard.steps`` keeps the steps (as given, before defaults) and their
``step_defaults`` as its params, and each firing makes a multi-step job of
them, validated anew against the step types registered then."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from runtime.domain.errors import UnknownJobType
from runtime.domain.steps import STEPS_TYPE
from runtime.jobs.registry import JobType, Registry
from runtime.workflows.step_methods import steps_row
from runtime.workflows.step_specs import Step, step_records, steps_job_type


def schedule_params(
    registry: Registry,
    steps: Sequence[Step | Mapping[str, Any]],
    step_defaults: Mapping[str, Any] | None,
    *,
    public: bool = False,
) -> dict[str, Any]:
    """What a schedule of ``steps`` stores as its params (checked now: bad
    input raises and nothing is stored)."""
    step_records(registry, steps, step_defaults, public=public)
    given = []
    for item in steps:
        step = item if isinstance(item, Step) else Step(**item)
        job_type = step.type if isinstance(step.type, JobType) else registry.get(step.type)
        params = step.params
        if isinstance(params, BaseModel):
            own = params.model_dump(mode="json", exclude_unset=True)
        else:
            own = dict(params or {})
        given.append(
            {
                "type": job_type.name,
                "params": own,
                "mandatory": step.mandatory,
                "max_retries": step.max_retries,
                "retry_delay": step.retry_delay,
            }
        )
    return {"steps": given, "step_defaults": dict(step_defaults or {})}


def scheduled_job_type(registry: Registry, name: str, params: Mapping[str, Any]) -> JobType:
    """The type a schedule's jobs are built as: its registered type, or for a
    schedule of steps, the steps' (:class:`UnknownJobType` if one is unknown)."""
    if name != STEPS_TYPE:
        return registry.get(name)
    steps = params.get("steps") or []
    if not steps:
        raise UnknownJobType(name)
    return steps_job_type(registry.get(steps[0]["type"]))


def scheduled_steps_row(
    registry: Registry,
    params: Mapping[str, Any],
    *,
    now: float,
    tenant_id: str | None,
    queue: str | None,
    user_id: str | None,
) -> dict[str, Any]:
    """A new multi-step job of a schedule of steps."""
    return steps_row(
        registry,
        params["steps"],
        params.get("step_defaults"),
        now=now,
        tenant_id=tenant_id,
        queue=queue,
        user_id=user_id,
    )
