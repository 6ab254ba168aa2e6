from __future__ import annotations

import runtime
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
        "suspending",
        "suspended",
        "resuming",
    }
