"""Cancel, suspend and resume act on a whole multi-step job; a resumed job
goes on at the step it stopped in, from that step's checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing
from pydantic import BaseModel

from runtime import JobContext, JobStatus, Registry, Runtime, Step, StepStatus
from tests.conftest import QUIET

pytestmark = pytest.mark.trio

S = JobStatus


class Count(BaseModel):
    name: str
    to: int = 1


class Counter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object, bool]] = []  # name, checkpoint, resumed
        self.reached: dict[str, trio.Event] = {}

    def reached_half(self, name: str) -> trio.Event:
        return self.reached.setdefault(name, trio.Event())


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: object) -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, "grace_period": 5.0, **options})  # type: ignore[arg-type]

    return make


@pytest.fixture
def counter(registry: Registry) -> Counter:
    counter = Counter()

    @registry.job(name="count", max_retries=0)
    async def count(ctx: JobContext, params: Count) -> int:
        state = ctx.checkpoint_state
        counter.calls.append((params.name, state, ctx.resumed))
        start = state["at"] if state else 0
        for at in range(start, params.to):
            await ctx.checkpoint({"at": at + 1})
            await ctx.progress(current=at + 1, total=params.to)
            if at + 1 == params.to // 2:
                counter.reached_half(params.name).set()
            await trio.sleep(1)
        return params.to

    return counter


async def test_suspend_and_resume_continue_at_the_step_from_its_checkpoint(
    on_store: Callable[..., Runtime], counter: Counter, mock_clock: trio.testing.MockClock
) -> None:
    async with on_store() as rt:
        job = await rt.enqueue_steps(
            [Step("count", {"name": "a", "to": 2}), Step("count", {"name": "b", "to": 10})]
        )
        await counter.reached_half("b").wait()
        await rt.suspend(job.id)
        async for event in rt.events(job.id):
            if event.status is S.SUSPENDED:
                break
        parked = await rt.get(job.id)
        await rt.resume(job.id)
        done = await rt.wait(job.id)
    assert parked.status is S.SUSPENDED and parked.steps is not None
    assert [s.status for s in parked.steps] == [StepStatus.COMPLETED, StepStatus.SUSPENDED]
    assert parked.checkpoint == {"at": 5}
    assert done.status is S.COMPLETED and done.result == [2, 10]
    assert counter.calls == [
        ("a", None, False),
        ("b", None, False),  # the first step's checkpoint ended with it
        ("b", {"at": 5}, True),  # step a is not run again
    ]
    assert done.steps is not None and [s.attempts for s in done.steps] == [1, 2]


async def test_cancel_ends_the_whole_job_and_its_steps(
    on_store: Callable[..., Runtime], counter: Counter, mock_clock: trio.testing.MockClock
) -> None:
    async with on_store() as rt:
        job = await rt.enqueue_steps(
            [
                Step("count", {"name": "a", "to": 2}),
                Step("count", {"name": "b", "to": 10}),
                Step("count", {"name": "c"}),
            ]
        )
        await counter.reached_half("b").wait()
        await rt.cancel(job.id, reason="enough")
        done = await rt.wait(job.id)
    assert done.status is S.CANCELED and done.cancel_reason == "enough"
    assert done.steps is not None
    assert [s.status for s in done.steps] == [
        StepStatus.COMPLETED,
        StepStatus.CANCELED,
        StepStatus.SKIPPED,
    ]
    assert [name for name, *_ in counter.calls] == ["a", "b"]


async def test_a_suspended_waiting_multi_step_job_resumes_at_its_first_step(
    make_runtime: Callable[..., Runtime], counter: Counter
) -> None:
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue_steps([Step("count", {"name": "a"})])
        assert (await rt.suspend(job.id)).status is S.SUSPENDED
        await rt.resume(job.id)
    with trio.fail_after(30):
        async with make_runtime() as rt:
            done = await rt.wait(job.id)
    assert done.status is S.COMPLETED and done.result == [1]


async def test_a_manual_retry_keeps_the_completed_steps_and_runs_the_others_again(
    on_store: Callable[..., Runtime], registry: Registry
) -> None:
    broken = {"b": True}
    ran: list[str] = []

    @registry.job(name="flaky", max_retries=0)
    async def flaky(ctx: JobContext, params: Count) -> str:
        ran.append(params.name)
        if broken.get(params.name):
            raise RuntimeError(f"{params.name} broke")
        return params.name

    with trio.fail_after(30):
        async with on_store() as rt:
            job = await rt.enqueue_steps(
                [Step("flaky", {"name": n}) for n in ("a", "b", "c")], max_retries=0
            )
            failed = await rt.wait(job.id)
            broken["b"] = False
            again = await rt.retry(job.id)
            done = await rt.wait(job.id)
    assert failed.status is S.FAILED and failed.steps is not None
    assert [s.status for s in failed.steps] == ["completed", "failed", "skipped"]
    assert again.steps is not None
    assert [s.status for s in again.steps] == ["completed", "pending", "pending"]
    assert again.steps[1].attempts == 0 and again.steps[1].error is None
    assert done.status is S.COMPLETED and done.result == ["a", "b", "c"]
    assert ran == ["a", "b", "b", "c"]
