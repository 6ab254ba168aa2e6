"""A handler that returns past its deadline without yielding: its timeout could not fire."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import Claimed, Ended, JobHandle, run_job
from tests.actors.fakes import ScriptRunner

pytestmark = pytest.mark.trio


async def _run(body: object, timeout: float | None = 1.0) -> Ended:
    job = Claimed("j", "q", timeout, payload=body)
    outcome = await run_job(job, ScriptRunner(), JobHandle(job))
    return outcome.ended


async def test_returning_past_the_deadline_without_yielding_is_an_overrun(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def blocks() -> str:
        autojump_clock.jump(5)  # time passes, and the loop never gets a turn
        return "late"

    assert await _run(blocks) is Ended.OVERRAN


async def test_the_deadline_still_cancels_a_handler_that_yields(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def sleeps() -> str:
        await trio.sleep(5)
        return "never"

    assert await _run(sleeps) is Ended.TIMED_OUT


async def test_returning_in_time_or_without_a_timeout_is_a_return(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def quick() -> str:
        await trio.sleep(0.5)
        return "ok"

    async def slow_without_timeout() -> str:
        autojump_clock.jump(5)
        return "ok"

    assert await _run(quick) is Ended.RETURNED
    assert await _run(slow_without_timeout, timeout=None) is Ended.RETURNED
