"""Turning a list of steps into a multi-step job's row: validation, defaults,
the steps' first records. No I/O: bad input raises and nothing is stored."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from runtime.domain.checks import INT_MAX, is_finite, is_int
from runtime.domain.errors import InvalidParams
from runtime.domain.steps import STEPS_TYPE, StepStatus
from runtime.domain.storable import describe, json_problem
from runtime.jobs.enqueue import storable_params
from runtime.jobs.registry import JobType, Registry

STEPS_MAX = 100
"""The most steps one job may have."""

StepTypeRef = str | JobType | Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a multi-step job (``rt.enqueue_steps``).

    ``type``: a registered job type (its name, its handler or the type);
    ``params``: validated against that type's model once merged with the
    job's ``step_defaults`` (the step's own values win). A ``mandatory`` step
    that fails for good fails the job and skips the steps after it; an
    optional one is recorded failed and the job goes on. ``max_retries`` and
    ``retry_delay`` (seconds before each retry) are the step's own, defaulting
    to its type's; a step's retries never spend the job's attempts.
    """

    type: StepTypeRef
    params: Mapping[str, Any] | BaseModel | None = None
    mandatory: bool = True
    max_retries: int | None = None
    retry_delay: float | None = None


class StepsParams(BaseModel):
    """The params a multi-step job keeps for itself: the defaults its steps got."""

    step_defaults: dict[str, Any] = {}


def steps_job_type(first: JobType) -> JobType:
    """The type a multi-step job's row is built as: named :data:`STEPS_TYPE`, on
    its first step's queue and group, with the job-level defaults of any job."""
    return JobType(
        name=STEPS_TYPE,
        handler=_never_called,
        params_model=StepsParams,
        group=first.group,
        queue=first.queue,
        priority=first.priority,
    )


async def _never_called(ctx: Any, params: Any) -> None:  # pragma: no cover - see docstring
    """A multi-step job runs its steps (``runtime.workflows.steps``), never this."""
    raise AssertionError("a multi-step job runs its steps, not a handler")


def step_records(
    registry: Registry,
    steps: Sequence[Step | Mapping[str, Any]],
    step_defaults: Mapping[str, Any] | None,
    *,
    public: bool = False,
) -> tuple[list[dict[str, Any]], JobType]:
    """The first record of every step, and the type of the first step.

    ``public``: the types are named by an interface (HTTP, a schedule), which
    may not name an internal type. Raises :class:`InvalidParams` (its errors
    carry the step's index as ``step``) or ``ValueError``/``TypeError``.
    """
    if isinstance(steps, str | bytes | Mapping) or not isinstance(steps, Sequence):
        raise TypeError(f"steps must be a list of steps, got {steps!r:.80}")
    if not 1 <= len(steps) <= STEPS_MAX:
        raise ValueError(f"a job must have 1 to {STEPS_MAX} steps, got {len(steps)}")
    defaults = _defaults(step_defaults)
    given = [_as_step(item, index) for index, item in enumerate(steps)]
    types = [_type_of(registry, step.type, index, public) for index, step in enumerate(given)]
    _check_defaults_used(defaults, types)
    records = [
        _record(step, job_type, defaults, index)
        for index, (step, job_type) in enumerate(zip(given, types, strict=True))
    ]
    return records, types[0]


def _defaults(step_defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    if step_defaults is None:
        return {}
    if not isinstance(step_defaults, Mapping):
        raise TypeError(f"step_defaults must be a mapping, got {step_defaults!r:.80}")
    problem = json_problem(dict(step_defaults))
    if problem is not None:
        raise ValueError(f"step_defaults cannot be stored: {describe('step_defaults', problem)}")
    return dict(step_defaults)


def _as_step(item: Step | Mapping[str, Any], index: int) -> Step:
    if isinstance(item, Step):
        return item
    if not isinstance(item, Mapping):
        raise TypeError(f"step {index}: a Step or a mapping, got {item!r:.80}")
    unknown = set(item) - {"type", "params", "mandatory", "max_retries", "retry_delay"}
    if unknown:
        raise ValueError(f"step {index}: unknown field(s) {', '.join(sorted(unknown))}")
    if "type" not in item:
        raise ValueError(f"step {index}: type is required")
    return Step(**item)


def _type_of(registry: Registry, ref: StepTypeRef, index: int, public: bool) -> JobType:
    if isinstance(ref, JobType):
        return ref
    if public:
        if not isinstance(ref, str):
            raise TypeError(f"step {index}: type must be a job type's name, got {ref!r:.80}")
        return registry.get_public(ref)
    return registry.get(ref)


def _check_defaults_used(defaults: dict[str, Any], types: list[JobType]) -> None:
    """A default that no step's params declare is a mistake (a misspelt name):
    refused rather than silently dropped."""
    declared = {name for t in types for name in t.params_model.model_fields}
    unused = sorted(set(defaults) - declared)
    if unused:
        raise ValueError(f"step_defaults name no parameter of any step: {', '.join(unused)}")


def _record(step: Step, job_type: JobType, defaults: dict[str, Any], index: int) -> dict[str, Any]:
    if not isinstance(step.mandatory, bool):
        raise TypeError(f"step {index}: mandatory must be a bool, got {step.mandatory!r}")
    max_retries = job_type.max_retries if step.max_retries is None else step.max_retries
    if not (is_int(max_retries) and 0 <= max_retries <= INT_MAX):
        raise ValueError(f"step {index}: max_retries must be an int in 0..{INT_MAX}")
    retry_delay = job_type.retry_delay if step.retry_delay is None else step.retry_delay
    if not (is_finite(retry_delay) and retry_delay >= 0):
        raise ValueError(f"step {index}: retry_delay must be finite seconds >= 0")
    return {
        "type": job_type.name,
        "params": _merged_params(job_type, step.params, defaults, index),
        "mandatory": step.mandatory,
        "max_retries": max_retries,
        "retry_delay": float(retry_delay),
        "status": StepStatus.PENDING.value,
        "attempts": 0,
        "progress": 0.0,
        "error": None,
        "result": None,
        "started_at": None,
        "finished_at": None,
    }


def _merged_params(
    job_type: JobType,
    params: Mapping[str, Any] | BaseModel | None,
    defaults: dict[str, Any],
    index: int,
) -> dict[str, Any]:
    """The step's params over the defaults its type declares, validated and dumped."""
    if isinstance(params, BaseModel):
        own = params.model_dump(exclude_unset=True)
    elif params is None:
        own = {}
    elif isinstance(params, Mapping):
        own = dict(params)
    else:
        raise TypeError(f"step {index}: params must be a mapping or a model, got {params!r:.80}")
    fields = job_type.params_model.model_fields
    merged = {name: value for name, value in defaults.items() if name in fields}
    merged.update(own)
    try:
        return storable_params(job_type, merged)
    except InvalidParams as err:
        errors = [{**e, "step": index} for e in err.errors]
        raise InvalidParams(job_type.name, errors, f"step {index}: {err}") from err
