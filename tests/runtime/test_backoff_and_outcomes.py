from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from actors import Claimed, Ended, Outcome
from runtime.domain.errors import Fail, Retry, Skip
from runtime.jobs.backoff import retry_delay
from runtime.jobs.outcomes import decide


def row(attempt: int = 1, max_retries: int = 3, **extra: object) -> dict[str, object]:
    return {
        "attempt": attempt,
        "max_retries": max_retries,
        "retry_delay": 2.0,
        "timeout": 5.0,
        **extra,
    }


def outcome(ended: Ended, value: object = None, error: BaseException | None = None) -> Outcome:
    return Outcome(Claimed("j", "q"), ended, value=value, error=error)


def test_backoff_doubles_from_the_base_within_jitter() -> None:
    rng = random.Random(7)
    delays = [retry_delay(n, 2.0, jitter=0.2, rng=rng) for n in (1, 2, 3, 4)]
    for n, delay in enumerate(delays):
        assert 2.0 * 2**n * 0.8 <= delay <= 2.0 * 2**n * 1.2


def test_backoff_is_capped() -> None:
    assert retry_delay(40, 2.0, cap=60.0) <= 60.0


def test_backoff_of_a_job_retried_forever_stays_at_its_cap() -> None:
    # 2.0 ** 1024 overflows a float: a type with max_retries in the thousands got there.
    for attempt in (1024, 1025, 10**6):
        assert 0.8 * 60.0 <= retry_delay(attempt, 2.0, cap=60.0) <= 60.0


def test_failure_with_attempts_left_is_scheduled_again() -> None:
    values = decide(outcome(Ended.RAISED, error=ValueError("nope")), row(attempt=1), now=100.0)
    assert values["status"] == "scheduled"
    assert 100.0 + 1.6 <= values["scheduled_at"] <= 100.0 + 2.4
    assert values["error"] == "ValueError: nope"
    assert "ValueError: nope" in values["traceback"]


def test_failure_on_last_attempt_fails_the_job() -> None:
    values = decide(outcome(Ended.RAISED, error=ValueError("nope")), row(attempt=4), now=1.0)
    assert values["status"] == "failed" and values["finished_at"] == 1.0


def test_retry_signal_uses_its_own_delay() -> None:
    values = decide(outcome(Ended.RAISED, error=Retry(after=30)), row(), now=0.0)
    assert (values["status"], values["scheduled_at"]) == ("scheduled", 30.0)


def test_fail_signal_skips_retries_and_skip_signal_skips() -> None:
    assert decide(outcome(Ended.RAISED, error=Fail("bad")), row(), 0.0)["status"] == "failed"
    skipped = decide(outcome(Ended.RAISED, error=Skip("not today")), row(), 0.0)
    assert (skipped["status"], skipped["error"]) == ("skipped", "not today")


def test_timeout_retries_then_ends_as_timeout() -> None:
    assert decide(outcome(Ended.TIMED_OUT), row(attempt=1), 0.0)["status"] == "scheduled"
    last = decide(outcome(Ended.TIMED_OUT), row(attempt=4), 0.0)
    assert last["status"] == "timeout" and last["error"] == "timed out after 5s (attempt 4)"


def test_interrupted_attempt_is_not_counted() -> None:
    values = decide(outcome(Ended.INTERRUPTED), row(attempt=2), now=9.0)
    assert values == {"status": "waiting", "attempt": 1, "scheduled_at": 9.0}


@pytest.mark.parametrize("value", [{1, 2}, object()])
def test_result_that_is_not_json_fails_clearly(value: object) -> None:
    values = decide(outcome(Ended.RETURNED, value=value), row(), 0.0)
    assert values["status"] == "failed"
    kind = type(value).__name__
    assert (
        values["error"]
        == f"the result cannot be stored: result: an object of type {kind} is not JSON"
    )


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (float("nan"), "result: nan is not a JSON number"),
        ({"a": [1, float("-inf")]}, "result.a.1: -inf is not a JSON number"),
        ("name\udcff", "result: holds an unpaired surrogate"),
        ({"k\ud800": 1}, "result.k\\ud800: its key holds an unpaired surrogate"),
        (_nested(100_000), "result.0.0.0.0.(93 more).0.0.0: it nests deeper than 100 levels"),
    ],
)
def test_result_no_store_can_keep_fails_the_job_naming_where(value: object, error: str) -> None:
    values = decide(outcome(Ended.RETURNED, value=value), row(max_retries=3), 0.0)
    assert values == {
        "status": "failed",
        "finished_at": 0.0,
        "error": f"the result cannot be stored: {error}",
    }


def test_result_with_nul_characters_is_stored_as_it_is() -> None:
    # JSON writes NUL as \u0000: both stores keep it in a JSON column.
    values = decide(outcome(Ended.RETURNED, value={"a\x00": "b\x00"}), row(), 0.0)
    assert (values["status"], values["result"]) == ("completed", {"a\x00": "b\x00"})


def test_error_text_no_store_can_keep_is_stored_escaped() -> None:
    # A name from os.listdir that is not UTF-8, and a NUL, as str() gives them.
    error = RuntimeError("no caf\udce9\x00.txt")
    values = decide(outcome(Ended.RAISED, error=error), row(max_retries=0), 0.0)
    assert values["error"] == "RuntimeError: no caf\\udce9\\x00.txt"
    assert values["traceback"].endswith("RuntimeError: no caf\\udce9\\x00.txt\n")


class _Result(BaseModel):
    when: datetime
    count: int


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (None, None),
        (3, 3),
        ("done", "done"),
        ({"a": [1, 2]}, {"a": [1, 2]}),
        (
            _Result(when=datetime(2026, 1, 2, tzinfo=UTC), count=2),
            {"when": "2026-01-02T00:00:00Z", "count": 2},
        ),
    ],
)
def test_returned_values_are_stored_as_json(value: object, stored: object) -> None:
    values = decide(outcome(Ended.RETURNED, value=value), row(), 5.0)
    assert values["status"] == "completed" and values["result"] == stored
