from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel

from runtime import InvalidParams, JobContext, Registry, UnknownJobType
from runtime.domain.errors import DuplicateJobType, InvalidJobType
from runtime.jobs.registry import JobType, Queue


class Resize(BaseModel):
    path: str
    width: int = 256


def test_job_decorator_registers_type_with_its_options(registry: Registry) -> None:
    @registry.job(
        name="resize",
        group="media",
        queue="compute",
        timeout=60,
        max_retries=3,
        retry_delay=2.0,
        priority=5,
    )
    async def resize(ctx: JobContext, params: Resize) -> dict[str, int]:
        """Resize an image."""
        return {"width": params.width}

    jt = registry.get("resize")
    assert (jt.group, jt.queue, jt.timeout, jt.max_retries, jt.retry_delay, jt.priority) == (
        "media",
        "compute",
        60,
        3,
        2.0,
        5,
    )
    assert jt.params_model is Resize and jt.description == "Resize an image."
    assert registry.get(resize) is jt  # by handler too
    assert "media" in [g.name for g in registry.groups()]
    assert Queue("compute") in registry.queues()


def test_describe_lists_types_with_params_json_schema(registry: Registry) -> None:
    @registry.job()
    async def resize(ctx: JobContext, params: Resize) -> None: ...

    [described] = registry.describe()
    assert described["name"] == "resize"
    assert described["params_schema"]["required"] == ["path"]
    assert described["params_schema"]["properties"]["width"]["default"] == 256


def test_unknown_type_names_the_known_ones(registry: Registry) -> None:
    @registry.job()
    async def resize(ctx: JobContext, params: Resize) -> None: ...

    with pytest.raises(UnknownJobType, match="unknown job type 'rezise'; known types: resize"):
        registry.get("rezise")


def test_validation_errors_are_field_by_field(registry: Registry) -> None:
    @registry.job()
    async def resize(ctx: JobContext, params: Resize) -> None: ...

    with pytest.raises(InvalidParams) as caught:
        registry.get("resize").validate({"width": "wide"})
    locs = sorted(tuple(e["loc"]) for e in caught.value.errors)
    assert locs == [("path",), ("width",)]
    assert "path: Field required" in str(caught.value)


class Scale(BaseModel):
    width: int = 1


def test_params_validate_from_a_dict_a_model_or_nothing(registry: Registry) -> None:
    @registry.job()
    async def scale(ctx: JobContext, params: Scale) -> None: ...

    job_type = registry.get("scale")
    given = Scale(width=3)
    assert job_type.validate(given) is given
    assert job_type.validate({"width": "4"}) == Scale(width=4)
    assert job_type.validate(None) == Scale()
    assert job_type.validate(Resize(path="/x", width=5)) == Scale(width=5)  # by its fields


def test_handler_must_take_ctx_and_a_model(registry: Registry) -> None:
    def sync(ctx: JobContext, params: Resize) -> None: ...

    async def untyped(ctx, params):  # type: ignore[no-untyped-def]
        ...

    async def one_arg(ctx: JobContext) -> None: ...

    assert registry.job()(sync) is sync and registry.get("sync").is_sync  # a worker thread's
    with pytest.raises(InvalidJobType, match="pydantic BaseModel subclass"):
        registry.job()(untyped)
    with pytest.raises(InvalidJobType, match=r"must take \(ctx, params\), takes 1"):
        registry.job()(one_arg)  # type: ignore[type-var]


def test_bad_options_and_duplicates_are_refused(registry: Registry) -> None:
    async def resize(ctx: JobContext, params: Resize) -> None: ...

    with pytest.raises(InvalidJobType, match="timeout must be > 0"):
        registry.job(timeout=0)(resize)
    with pytest.raises(InvalidJobType, match="max_retries must be >= 0"):
        registry.job(max_retries=-1)(resize)
    registry.job()(resize)
    with pytest.raises(DuplicateJobType, match="'resize' is already registered"):
        registry.job()(resize)


def test_queue_capacity_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 0 \\(an int\\), got -1"):
        Queue("q", capacity=-1)
    for capacity in (float("nan"), 1.5, True):
        with pytest.raises(ValueError, match="capacity must be >= 0"):
            Queue("q", capacity=capacity)  # type: ignore[arg-type]


def test_a_bad_queue_name_registers_nothing(registry: Registry) -> None:
    async def resize(ctx: JobContext, params: Resize) -> None: ...

    # The type used to be stored before Queue("") raised, so a retry hit DuplicateJobType.
    with pytest.raises(InvalidJobType, match="queue must be a non-empty str, got ''"):
        registry.job("a", queue="")(resize)
    assert registry.types() == [] and [q.name for q in registry.queues()] == ["default"]
    registry.job("a", queue="q")(resize)
    assert registry.get("a").queue == "q"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lock": "{"}, "lock template '{' is malformed"),
        ({"lock": "{0}"}, "fields must name params"),
        ({"lock": "{x!z}"}, "unknown conversion !z"),
        ({"lock": 5}, "lock must be a non-empty str template, got 5"),
        ({"timeout": float("nan")}, "timeout must be > 0"),
        ({"timeout": float("inf")}, "timeout must be > 0"),
        ({"timeout": "60"}, "timeout must be > 0"),
        ({"retry_delay": float("nan")}, "retry_delay must be >= 0"),
        ({"max_retries": 1.5}, "max_retries must be >= 0"),
        ({"max_retries": True}, "max_retries must be >= 0"),
        ({"max_retries": 2**63}, "max_retries must be >= 0"),
        ({"priority": 2**63}, "priority must be an int"),
        ({"priority": "high"}, "priority must be an int"),
        ({"rate_limit": 5}, "rate_limit must be a str such as '100/minute', got 5"),
        ({"version": "2"}, "version must be >= 1"),
        ({"version": True}, "version must be >= 1"),
        ({"max_concurrency": 1.5}, "max_concurrency must be >= 1"),
        ({"max_concurrency": True}, "max_concurrency must be >= 1"),
        ({"unique": "yes"}, "unique must be a bool, got 'yes'"),
        ({"should_run": "always"}, "should_run must be callable"),
        ({"group": ""}, "group must be a non-empty str"),
        ({"description": 5}, "description must be a str"),
        ({"no_such_option": 1}, "unexpected keyword argument 'no_such_option'"),
    ],
    ids=repr,
)
def test_a_bad_option_is_invalid_job_type_and_registers_nothing(
    registry: Registry, options: dict[str, Any], message: str
) -> None:
    async def resize(ctx: JobContext, params: Resize) -> None: ...

    with pytest.raises(InvalidJobType, match=re.escape(message)):
        registry.job("a", **options)(resize)
    assert registry.types() == []


def test_lock_template_a_value_cannot_fill_is_invalid_params(registry: Registry) -> None:
    async def resize(ctx: JobContext, params: Resize) -> None: ...

    registry.job("a", lock="{path}/{width:x}")(resize)
    jt = registry.get("a")
    assert jt.lock_key_for({"path": "p", "width": 255}) == "p/ff"
    with pytest.raises(InvalidParams, match="lock template"):  # was a raw ValueError
        jt.lock_key_for({"path": "p", "width": "wide"})
    # A template that skipped the registry's check still gives InvalidParams.
    raw = JobType(name="raw", handler=resize, params_model=Resize, lock="{")
    with pytest.raises(InvalidParams, match=re.escape("lock template '{' cannot be filled")):
        raw.lock_key_for({})
