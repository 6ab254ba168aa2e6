"""Multi-step jobs (``rt.enqueue_steps``) on every store: order, defaults,
mandatory and optional failures, per-step retries, progress, events."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing
from pydantic import BaseModel

from runtime import (
    Fail,
    InvalidParams,
    JobContext,
    JobStatus,
    Registry,
    Runtime,
    Step,
    StepStatus,
    SyncJobContext,
    UnknownJobType,
)
from runtime.domain.steps import STEPS_TYPE
from tests.conftest import QUIET

pytestmark = pytest.mark.trio

S = JobStatus


class Action(BaseModel):
    name: str
    container: str = "none"
    log_file: str = "none"
    fail_times: int = 0  # fail this many tries, then succeed
    fail: bool = False


class Other(BaseModel):
    size: int


class Part(BaseModel):
    wait: bool = False


class Trace:
    def __init__(self) -> None:
        self.ran: list[tuple[str, int, str, str]] = []  # name, try, container, log_file
        self.tries: dict[str, int] = {}


@pytest.fixture
def trace(registry: Registry) -> Trace:
    trace = Trace()

    @registry.job(name="action", max_retries=0, retry_delay=0)
    async def action(ctx: JobContext, params: Action) -> str:
        tries = trace.tries[params.name] = trace.tries.get(params.name, 0) + 1
        trace.ran.append((params.name, ctx.attempt, params.container, params.log_file))
        if params.fail:
            raise Fail(f"{params.name} cannot")
        if tries <= params.fail_times:
            raise RuntimeError(f"{params.name} try {tries} broke")
        return f"{params.name} done"

    @registry.job(name="other", max_retries=0)
    async def other(ctx: JobContext, params: Other) -> int:
        return params.size * 2

    return trace


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: object) -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, "grace_period": 5.0, **options})  # type: ignore[arg-type]

    return make


async def test_steps_run_in_order_with_defaults_merged_and_results_kept(
    on_store: Callable[..., Runtime], trace: Trace
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            job = await rt.enqueue_steps(
                [
                    Step("action", {"name": "home"}),
                    {"type": "action", "params": {"name": "etc", "log_file": "/etc.log"}},
                    Step("other", {"size": 21}),
                ],
                step_defaults={"container": "bucket", "log_file": "/tmp/log"},
            )
            done = await rt.wait(job.id)
    assert job.type == STEPS_TYPE and job.status is S.WAITING
    assert job.steps is not None and [s.status for s in job.steps] == [StepStatus.PENDING] * 3
    assert job.params == {"step_defaults": {"container": "bucket", "log_file": "/tmp/log"}}
    assert trace.ran == [("home", 1, "bucket", "/tmp/log"), ("etc", 1, "bucket", "/etc.log")]
    assert done.status is S.COMPLETED and done.result == ["home done", "etc done", 42]
    assert done.steps is not None
    assert [s.status for s in done.steps] == [StepStatus.COMPLETED] * 3
    assert [s.result for s in done.steps] == ["home done", "etc done", 42]
    assert done.steps[2].params == {"size": 21}  # only the defaults its model declares
    assert all(s.started_at is not None and s.finished_at is not None for s in done.steps)
    assert [s.attempts for s in done.steps] == [1, 1, 1]
    assert done.progress == 100.0 and done.attempt == 1


async def test_bad_step_input_is_refused_and_nothing_is_stored(
    on_store: Callable[..., Runtime], trace: Trace
) -> None:
    async with on_store(workers=False) as rt:
        with pytest.raises(InvalidParams, match="step 1") as caught:
            await rt.enqueue_steps([Step("action", {"name": "a"}), Step("other", {"size": "x"})])
        assert caught.value.errors[0]["step"] == 1 and caught.value.errors[0]["loc"] == ["size"]
        with pytest.raises(UnknownJobType):
            await rt.enqueue_steps([Step("nope")])
        with pytest.raises(ValueError, match="step_defaults name no parameter of any step: colour"):
            await rt.enqueue_steps([Step("other", {"size": 1})], step_defaults={"colour": 1})
        with pytest.raises(ValueError, match="1 to 100 steps"):
            await rt.enqueue_steps([])
        with pytest.raises(ValueError, match="step 0: max_retries"):
            await rt.enqueue_steps([Step("other", {"size": 1}, max_retries=-1)])
        assert await rt.count() == 0


async def test_a_failed_mandatory_step_fails_the_job_and_skips_the_rest(
    on_store: Callable[..., Runtime], trace: Trace
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            job = await rt.enqueue_steps(
                [
                    Step("action", {"name": "a"}),
                    Step("action", {"name": "b", "fail": True}),
                    Step("action", {"name": "c"}),
                ]
            )
            done = await rt.wait(job.id)
    assert done.status is S.FAILED
    assert done.error == "mandatory step 2 (action) failed: b cannot"
    assert done.steps is not None
    assert [s.status for s in done.steps] == [
        StepStatus.COMPLETED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
    ]
    assert done.steps[1].error == "b cannot"
    assert [name for name, *_ in trace.ran] == ["a", "b"]
    assert done.attempt == 1  # Fail: the job is not retried


async def test_a_failed_optional_step_is_recorded_and_the_job_goes_on(
    on_store: Callable[..., Runtime], trace: Trace
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            job = await rt.enqueue_steps(
                [
                    Step("action", {"name": "a", "fail_times": 5}, mandatory=False, max_retries=1),
                    Step("action", {"name": "b"}),
                ]
            )
            done = await rt.wait(job.id)
    assert done.status is S.COMPLETED and done.result == [None, "b done"]
    assert done.steps is not None
    assert [s.status for s in done.steps] == [StepStatus.FAILED, StepStatus.COMPLETED]
    assert done.steps[0].attempts == 2 and done.steps[0].error == "RuntimeError: a try 2 broke"
    assert done.errors == ["optional step 1 (action) failed: RuntimeError: a try 2 broke"]


async def test_step_retries_are_the_steps_own_and_spend_no_job_attempt(
    make_runtime: Callable[..., Runtime], trace: Trace, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue_steps(
            [
                Step("action", {"name": "a", "fail_times": 2}, max_retries=2),  # inline retries
                Step("action", {"name": "b", "fail_times": 3}, max_retries=3, retry_delay=30),
            ],
            max_retries=0,  # the job itself may not be retried at all
        )
        started = trio.current_time()
        done = await rt.wait(job.id)
        took = trio.current_time() - started
    assert done.status is S.COMPLETED and done.result == ["a done", "b done"]
    assert done.attempt == 1  # rescheduled three times, still the job's first attempt
    assert done.steps is not None
    assert [s.attempts for s in done.steps] == [3, 4]
    assert [(name, attempt) for name, attempt, *_ in trace.ran] == [
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 1),
        ("b", 2),
        ("b", 3),
        ("b", 4),
    ]
    assert took >= 90  # three delays of 30 s each, spent rescheduled


async def test_a_step_waiting_for_its_retry_gives_its_slot_back(
    make_runtime: Callable[..., Runtime], trace: Trace, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(queues={"default": 1}) as rt:
        job = await rt.enqueue_steps(
            [Step("action", {"name": "slow", "fail_times": 1}, max_retries=1, retry_delay=60)]
        )
        with rt.subscribe(job.id) as events:
            async for event in events:
                if event.kind == "status" and event.status is S.SCHEDULED:
                    break
        parked = await rt.get(job.id)
        other = await rt.enqueue("other", {"size": 1})
        assert (await rt.wait(other.id)).status is S.COMPLETED  # ran meanwhile, in the one slot
        assert trio.current_time() < 60
        done = await rt.wait(job.id)
    assert parked.status is S.SCHEDULED and parked.steps is not None
    assert parked.steps[0].status is StepStatus.RETRYING and parked.steps[0].attempts == 1
    assert done.status is S.COMPLETED


async def test_progress_combines_the_steps(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    gate = trio.Event()
    seen: list[float] = []

    @registry.job(name="part")
    async def part(ctx: JobContext, params: Part) -> None:
        await ctx.progress(50)
        if params.wait:
            await gate.wait()

    with trio.fail_after(30):
        async with make_runtime() as rt:
            job = await rt.enqueue_steps([Step("part"), Step("part", {"wait": True})])
            with rt.subscribe(job.id) as events:
                async for event in events:
                    if event.kind == "progress":
                        seen.append(event.progress or 0.0)
                        if len(seen) == 2:
                            break
            running = await rt.get(job.id)
            gate.set()
            done = await rt.wait(job.id)
    # Half of the first of two steps, then the first whole and half the second.
    assert seen == [25.0, 75.0]
    assert running.steps is not None and running.steps[0].status is StepStatus.COMPLETED
    assert running.progress == 50.0  # stored with the first step's end
    assert done.progress == 100.0


async def test_step_events_show_the_job_moving_step_by_step(
    on_store: Callable[..., Runtime], trace: Trace
) -> None:
    seen: list[tuple[str, int | None, str | None]] = []
    with trio.fail_after(30):
        async with on_store() as rt:
            with rt.subscribe() as events:  # every job's: subscribed before it exists
                job = await rt.enqueue_steps(
                    [Step("action", {"name": "a"}), Step("action", {"name": "b", "fail": True})]
                )
                async for event in events:
                    if event.job_id == job.id and event.kind in ("step", "status"):
                        seen.append((event.kind, event.step, event.step_status or event.status))
                    if event.job_id == job.id and event.is_final:
                        break
    assert seen == [
        ("status", None, "waiting"),
        ("status", None, "running"),
        ("step", 0, "running"),
        ("step", 0, "completed"),
        ("step", 1, "running"),
        ("step", 1, "failed"),
        ("status", None, "failed"),
    ]


async def test_a_plain_def_step_reports_through_its_sync_context(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    @registry.job(name="sync.part", max_retries=0)
    def sync_part(ctx: SyncJobContext, params: Other) -> int:
        ctx.progress(fraction=0.5)
        ctx.checkpoint({"half": True})
        return params.size + ctx.attempt

    with trio.fail_after(30):
        async with make_runtime() as rt:
            job = await rt.enqueue_steps(
                [Step("sync.part", {"size": 1}), Step("sync.part", {"size": 2})]
            )
            done = await rt.wait(job.id)
    assert done.status is S.COMPLETED and done.result == [2, 3]
    assert done.checkpoint is None  # each step's ended with it


async def test_a_multi_step_job_may_depend_on_other_jobs(
    on_store: Callable[..., Runtime], trace: Trace
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            first = await rt.enqueue("action", {"name": "first"})
            job = await rt.enqueue_steps(
                [Step("action", {"name": "after"})], depends_on=[first.id], description="later"
            )
            done = await rt.wait(job.id)
    assert done.status is S.COMPLETED and done.description == "later"
    assert [name for name, *_ in trace.ran] == ["first", "after"]


async def test_a_job_timeout_fails_the_step_under_way_and_skips_the_rest(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    @registry.job(name="forever", max_retries=0)
    async def forever(ctx: JobContext, params: Part) -> None:
        await trio.sleep_forever()

    async with make_runtime() as rt:
        job = await rt.enqueue_steps([Step("forever"), Step("forever")], timeout=10, max_retries=0)
        done = await rt.wait(job.id)
    assert done.status is S.TIMEOUT and done.steps is not None
    assert [s.status for s in done.steps] == [StepStatus.FAILED, StepStatus.SKIPPED]
    assert done.steps[0].finished_at is not None


async def test_a_step_types_timeout_bounds_each_try_of_the_step(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    @registry.job(name="slow", max_retries=0, timeout=5)
    async def slow(ctx: JobContext, params: Part) -> None:
        await trio.sleep_forever()

    async with make_runtime() as rt:
        job = await rt.enqueue_steps([Step("slow", max_retries=1, retry_delay=0)])
        done = await rt.wait(job.id)
    assert done.status is S.FAILED and done.steps is not None
    assert done.steps[0].attempts == 2
    assert done.steps[0].error == "TimeoutError: step timed out after 5s"
