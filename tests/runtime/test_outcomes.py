"""Outcomes, retries, timeouts and checkpoints, end to end on a real store."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from runtime import JobStatus, Registry, Runtime
from tests.runtime.jobs import Journal, register

pytestmark = pytest.mark.trio


@pytest.fixture
def journal(registry: Registry) -> Journal:
    journal = Journal()
    register(registry, journal)
    return journal


async def test_return_value_is_stored_as_result(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("echo", {"value": {"a": [1, 2]}})
        done = await rt.wait(job.id, timeout=10)
    assert done.status is JobStatus.COMPLETED and done.result == {"a": [1, 2]}


async def test_exception_retries_with_backoff_then_succeeds(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("behave", {"how": "raise", "fail_times": 2})
        statuses = [e.status async for e in rt.events(job.id) if e.kind == "status"]
        done = await rt.get(job.id)
    # The first event is the status when we subscribed: under load the first
    # attempt may already have run (and failed) by then, so what we see is a
    # tail of the whole story, starting at most one retry in.
    story = ["waiting"] + ["running", "scheduled", "waiting"] * 2 + ["running", "completed"]
    assert statuses == story[-len(statuses) :] and len(statuses) >= len(story) - 3
    assert done.attempt == 3 and done.result == "ok on 3"
    assert done.error == "RuntimeError: boom 2"  # the last failure stays on record
    assert journal.started == [("behave", 1), ("behave", 2), ("behave", 3)]
    # Backoff doubles from retry_delay=10 (with +-20% jitter): about 10s, then 20s.
    assert done.started_at is not None and done.created_at is not None
    waited = (done.started_at - done.created_at).total_seconds()
    assert 24 <= waited <= 36


async def test_exhausted_retries_fail_with_message_and_traceback(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("behave", {"how": "raise", "fail_times": 99}, max_retries=1)
        done = await rt.wait(job.id)
    assert done.status is JobStatus.FAILED and done.attempt == 2
    assert done.error == "RuntimeError: boom 2"
    assert (
        done.traceback is not None and 'raise RuntimeError(f"boom {ctx.attempt}")' in done.traceback
    )


async def test_retry_signal_waits_its_delay(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("behave", {"how": "retry"})
        await trio.sleep(30)
        middle = await rt.get(job.id)
        done = await rt.wait(job.id)
    assert middle.status is JobStatus.SCHEDULED and middle.error == "come back later"
    assert done.status is JobStatus.COMPLETED and done.attempt == 2
    assert done.started_at is not None and done.created_at is not None
    assert (done.started_at - done.created_at).total_seconds() == pytest.approx(60, abs=1)


async def test_fail_signal_fails_without_retrying(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("behave", {"how": "fail"})
        done = await rt.wait(job.id, timeout=10)
    assert (done.status, done.error, done.attempt) == (JobStatus.FAILED, "hopeless", 1)


async def test_skip_signal_ends_job_skipped(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("behave", {"how": "skip"})
        done = await rt.wait(job.id, timeout=10)
    assert (done.status, done.error) == (JobStatus.SKIPPED, "nothing to do")


async def test_warn_records_non_critical_errors_and_goes_on(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    from tests.runtime.jobs import Echo

    @registry.job(name="warns", params=Echo)
    async def warns(ctx, params):  # type: ignore[no-untyped-def]
        ctx.warn("disk almost full")
        ctx.warn("slow network")
        return "done anyway"

    async with make_runtime() as rt:
        job = await rt.enqueue("warns", {})
        done = await rt.wait(job.id, timeout=10)
    assert done.status is JobStatus.COMPLETED and done.result == "done anyway"
    assert done.errors == ["disk almost full", "slow network"]


async def test_timeout_cancels_scope_runs_finally_and_ends_timeout(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    journal = Journal()
    register(registry, journal)
    async with make_runtime() as rt:
        job = await rt.enqueue("steps", {"steps": 100, "seconds": 1.0}, timeout=2.5)
        done = await rt.wait(job.id)
    assert done.status is JobStatus.TIMEOUT
    assert done.error == "timed out after 2.5s (attempt 1)"
    assert journal.finally_ran == ["steps"]
    assert done.checkpoint == {"done": 2}  # what it saved before the deadline


async def test_timeout_with_attempts_left_is_retried(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("behave", {"how": "sleep"}, timeout=5)
        done = await rt.wait(job.id)
    assert done.status is JobStatus.COMPLETED and done.attempt == 2
    assert done.error == "timed out after 5s (attempt 1)"


async def test_retried_attempt_sees_the_last_checkpoint(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    journal = Journal()
    register(registry, journal)
    async with make_runtime() as rt:
        # Times out after 2 of 4 steps; the retry goes on from step 2.
        job = await rt.enqueue("steps", {"steps": 4}, timeout=2.5, max_retries=1)
        done = await rt.wait(job.id)
    assert done.status is JobStatus.COMPLETED and done.attempt == 2
    assert journal.checkpoints == [None, {"done": 2}]
