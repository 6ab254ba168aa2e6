"""What both stores keep as given (runtime.domain.storable), and the handler calls that
refuse the rest."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from runtime import JobContext, JobStatus, Registry, Runtime
from runtime.domain.storable import JSON_DEPTH_MAX, check_text, describe, escaped, json_problem


class Color(enum.StrEnum):
    RED = "red"


def test_text_no_store_keeps_is_escaped_and_counted() -> None:
    assert escaped("plain ascii") == ("plain ascii", 0)
    assert escaped("café") == ("café", 0)
    assert escaped("a\x00b\udcffc\ud800") == ("a\\x00b\\udcffc\\ud800", 3)


def test_client_text_with_nul_or_a_surrogate_is_refused_naming_the_field() -> None:
    check_text("queue", "fine")
    check_text("queue", None)
    with pytest.raises(ValueError, match=r"^queue holds a NUL character, which cannot be stored"):
        check_text("queue", "q\x00")
    with pytest.raises(ValueError, match=r"^lock_key holds an unpaired surrogate"):
        check_text("lock_key", "caf\udce9")


@pytest.mark.parametrize(
    "value",
    [None, 1, 1.5, True, "x\x00", [1, (2, "3")], {"a": {"b": None}}, {1: "x"}, Color.RED],
)
def test_json_values_pass(value: Any) -> None:
    assert json_problem(value, nul=True) is None


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (math.nan, "v: nan is not a JSON number"),
        ({"a": [0, math.inf]}, "v.a.1: inf is not a JSON number"),
        ({"k": "x\x00"}, "v.k: holds a NUL character"),
        ({"x\x00": 1}, "v.x\x00: its key holds a NUL character"),
        ({"a": {1, 2}}, "v.a: an object of type set is not JSON"),
        ({(1,): 1}, "v.(1,): a key of type tuple is not JSON"),
    ],
)
def test_values_no_store_keeps_are_found_naming_where(value: Any, where: str) -> None:
    problem = json_problem(value)
    assert problem is not None and describe("v", problem) == where


def test_nesting_is_bounded_without_recursing_past_the_bound() -> None:
    value: Any = 1
    for _ in range(JSON_DEPTH_MAX):
        value = [value]
    assert json_problem(value) is None
    assert json_problem([value]) == ([0] * JSON_DEPTH_MAX, "it nests deeper than 100 levels")


def test_lenient_check_leaves_other_types_to_the_params_model() -> None:
    assert json_problem({"when": object()}, strict=False) is None
    assert json_problem({"ratio": math.nan}, strict=False) is not None


class Holder(BaseModel):
    value: Any = None


@pytest.mark.trio
async def test_checkpoint_and_progress_details_no_store_keeps_are_refused_at_once(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    @registry.job(name="refuse", max_retries=0)
    async def refuse(ctx: JobContext, params: Holder) -> list[str]:
        refused = []
        for call in (
            lambda: ctx.checkpoint({"ratio": math.nan}),
            lambda: ctx.checkpoint(["caf\udce9"]),
            lambda: ctx.progress(10, details={"file": "caf\udce9"}),
        ):
            try:
                await call()
            except ValueError as err:
                refused.append(str(err))
        return refused

    async with make_runtime() as rt:
        job = await rt.enqueue("refuse", {})
        done = await rt.wait(job.id, timeout=10)
    assert done.status is JobStatus.COMPLETED and done.checkpoint is None
    assert done.result == [
        "the checkpoint cannot be stored: state.ratio: nan is not a JSON number",
        "the checkpoint cannot be stored: state.0: holds an unpaired surrogate",
        "progress details cannot be stored: details.file: holds an unpaired surrogate",
    ]


@pytest.mark.trio
async def test_an_outcome_the_store_refuses_fails_the_job_instead_of_leaving_it_running(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whatever slips past the checks: a finish the store refuses is recorded as
    # a failure, not left for a rescue after the lease lapses.
    from runtime.jobs import execution

    def unstorable(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"status": "completed", "finished_at": 0.0, "result": object()}

    monkeypatch.setattr(execution, "decide", unstorable)

    @registry.job(name="plain", max_retries=0)
    async def plain(ctx: JobContext, params: Holder) -> None:
        ctx.log.info("a record the refused finish carried")

    async with make_runtime(url=store_url) as rt:
        job = await rt.enqueue("plain", {})
        done = await rt.wait(job.id, timeout=10)
    assert done.status is JobStatus.FAILED and done.result is None
    assert done.error is not None
    assert done.error.startswith("the outcome could not be stored: ")
    assert "Object of type object is not JSON serializable" in done.error
