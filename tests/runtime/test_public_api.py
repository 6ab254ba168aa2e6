from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest

import runtime
from runtime import Registry, Runtime
from tests.sorting import isort_key

CONTRACT = {
    "Runtime",
    "job",
    "JobContext",
    "JobStatus",
    "Job",
    "UnknownJobType",
    "InvalidParams",
    "IllegalTransition",
    "JobNotFound",
    "Retry",
    "Fail",
    "Skip",
    "Registry",
}


def test_all_is_sorted_and_every_name_exists() -> None:
    assert runtime.__all__ == sorted(runtime.__all__, key=isort_key)
    for name in runtime.__all__:
        assert hasattr(runtime, name), name


def test_the_issue_contract_is_exported() -> None:
    assert set(runtime.__all__) >= CONTRACT


def test_statuses_are_lower_case_strings() -> None:
    assert {s.value for s in runtime.JobStatus} == {
        "scheduled",
        "waiting",
        "running",
        "canceling",
        "completed",
        "failed",
        "canceled",
        "timeout",
        "skipped",
        "locked",
        "blocked",
        "suspending",
        "suspended",
        "resuming",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lease": float("nan")}, "must be finite and longer than heartbeat_interval"),
        ({"lease": math.inf}, "must be finite and longer than heartbeat_interval"),
        ({"heartbeat_interval": float("nan")}, "longer than heartbeat_interval"),
        ({"heartbeat_interval": 0.0}, "longer than heartbeat_interval"),
        ({"grace_period": float("nan")}, "grace_period must be >= 0, got nan"),
        ({"grace_period": -1.0}, "grace_period must be >= 0, got -1.0"),
        ({"poll_interval": 0.0}, "poll_interval must be > 0 (math.inf to not poll), got 0.0"),
        ({"poll_interval": -1.0}, "poll_interval must be > 0"),
        ({"poll_interval": float("nan")}, "poll_interval must be > 0"),
        ({"progress_interval": 0.0}, "progress_interval must be > 0, got 0.0"),
        ({"sweep_interval": float("nan")}, "sweep_interval must be > 0, got nan"),
        ({"queues": {"a": float("nan")}}, "queue 'a': capacity must be >= 0 (an int), got nan"),
        ({"queues": {"a": 1.5}}, "queue 'a': capacity must be >= 0 (an int), got 1.5"),
        ({"log_limit": -1}, "log_limit must be an int >= 1, got -1"),
        ({"log_limit": 0}, "log_limit must be an int >= 1, got 0"),
        ({"log_limit": 10.5}, "log_limit must be an int >= 1, got 10.5"),
    ],
    ids=repr,
)
def test_a_bad_runtime_setting_is_a_value_error(
    registry: Registry, db_url: str, options: dict[str, Any], message: str
) -> None:
    # NaN passed every `<` check the constructor had; 0 meant "never poll" unsaid.
    settings = {"poll_interval": 10_000.0, "heartbeat_interval": 5_000.0, "lease": 10_000.0}
    with pytest.raises(ValueError, match=re.escape(message)):
        Runtime(db_url, registry=registry, **{**settings, **options})


@pytest.mark.trio
async def test_poll_interval_inf_turns_polling_off(make_runtime: Callable[..., Runtime]) -> None:
    async with make_runtime(poll_interval=math.inf) as rt:
        assert await rt.schedules() == []
