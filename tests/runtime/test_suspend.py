from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from runtime import HookContext, IllegalTransition, JobStatus, Registry, Runtime
from runtime.domain.errors import HookFailed
from tests.runtime.control_jobs import Trace, register

pytestmark = pytest.mark.trio


async def wait_status(rt: Runtime, job_id: object, status: JobStatus) -> None:
    async for event in rt.events(job_id):  # type: ignore[arg-type]
        if event.status is status:
            return
    raise AssertionError(f"job ended without reaching {status}")


async def test_suspend_running_job_frees_its_slot_and_resume_continues_from_checkpoint(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    register(registry, trace)
    async with make_runtime(queues={"default": 1}) as rt:
        first = await rt.enqueue("work", {"name": "first", "steps": 10})
        await trio.sleep(4.5)  # four steps done
        suspending = await rt.suspend(first.id)
        await wait_status(rt, first.id, JobStatus.SUSPENDED)
        second = await rt.enqueue("work", {"name": "second", "steps": 1})
        assert (await rt.wait(second.id)).status is JobStatus.COMPLETED  # the slot was freed
        parked = await rt.get(first.id)
        resumed = await rt.resume(first.id)
        done = await rt.wait(first.id)
        story = [e.message for e in await rt.logs(first.id) if e.extra and "status" in e.extra]
    assert suspending.status is JobStatus.SUSPENDING
    # The first attempt's start, stored when it ended, is read in its place by time.
    assert story == [
        f"attempt 1 started on {rt.worker_id}",
        "suspend: running -> suspending",
        "attempt 1 ended: suspended",
        "resume: suspended -> resuming",
        "resume: resuming -> waiting",
        f"attempt 2 started on {rt.worker_id}",
        "attempt 2 ended: completed",
    ]
    assert parked.status is JobStatus.SUSPENDED and parked.checkpoint == {"done": 4}
    assert parked.progress == 40.0
    assert resumed.status is JobStatus.WAITING
    assert done.status is JobStatus.COMPLETED
    assert trace.resumed == [
        ("first", False, None),
        ("second", False, None),
        ("first", True, {"done": 4}),
    ]
    assert trace.first_progress[-1] == 40.0  # progress goes on from where it was


async def test_suspending_a_waiting_job_parks_it_without_running(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    trace = Trace()
    register(registry, trace)
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("work", {})
        later = await rt.enqueue("work", {}, delay=60)
        assert (await rt.suspend(job.id)).status is JobStatus.SUSPENDED
        assert (await rt.suspend(later.id)).status is JobStatus.SUSPENDED
        with pytest.raises(IllegalTransition, match="its status is 'suspended'"):
            await rt.suspend(job.id)
    async with make_runtime() as rt:
        await trio.testing.wait_all_tasks_blocked()
        assert (await rt.get(job.id)).status is JobStatus.SUSPENDED
    assert trace.started == []


async def test_non_suspendable_type_refuses_suspend(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Trace(), suspendable=False)
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("work", {})
        with pytest.raises(IllegalTransition, match="non-suspendable"):
            await rt.suspend(job.id)
        assert (await rt.get(job.id)).status is JobStatus.WAITING


async def test_hooks_run_and_a_failing_hook_changes_nothing(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    trace = Trace()
    allow = {"suspend": False, "resume": False}

    def on_suspend(ctx: HookContext) -> None:
        trace.hooks.append(f"suspend {ctx.job.status}")
        if not allow["suspend"]:
            raise RuntimeError("busy")

    async def on_resume(ctx: HookContext) -> None:
        trace.hooks.append(f"resume {ctx.job.status}")
        if not allow["resume"]:
            raise RuntimeError("not yet")

    register(registry, trace, on_suspend=on_suspend, on_resume=on_resume)
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("work", {})
        with pytest.raises(HookFailed, match="on_suspend raised RuntimeError"):
            await rt.suspend(job.id)
        assert (await rt.get(job.id)).status is JobStatus.WAITING
        allow["suspend"] = True
        await rt.suspend(job.id)
        with pytest.raises(HookFailed, match="on_resume raised RuntimeError"):
            await rt.resume(job.id)
        assert (await rt.get(job.id)).status is JobStatus.SUSPENDED
        allow["resume"] = True
        assert (await rt.resume(job.id)).status is JobStatus.WAITING
    assert trace.hooks == [
        "suspend waiting",
        "suspend waiting",
        "resume suspended",
        "resume suspended",
    ]


@pytest.mark.parametrize("first", ["cancel", "suspend"])
async def test_a_refused_suspend_does_not_run_on_suspend(
    make_runtime: Callable[..., Runtime], registry: Registry, first: str
) -> None:
    trace = Trace()

    def on_suspend(ctx: HookContext) -> None:
        trace.hooks.append(f"suspend {ctx.job.status}")

    register(registry, trace, on_suspend=on_suspend)
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("work", {})
        await getattr(rt, first)(job.id)  # finished, or already parked
        trace.hooks.clear()
        status = (await rt.get(job.id)).status
        with pytest.raises(IllegalTransition, match=f"cannot suspend .* its status is '{status}'"):
            await rt.suspend(job.id)
    assert trace.hooks == []


async def test_resume_only_a_suspended_job(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Trace())
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("work", {})
        with pytest.raises(IllegalTransition, match=r"cannot resume .* its status is 'waiting'"):
            await rt.resume(job.id)


async def test_cancel_while_suspending_ends_canceled(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    from pydantic import BaseModel

    class Nothing(BaseModel):
        pass

    @registry.job(name="stubborn", params=Nothing)
    async def stubborn(ctx, params):  # type: ignore[no-untyped-def]
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(5)  # takes its time to save state

    async with make_runtime() as rt:
        job = await rt.enqueue("stubborn", {})
        await trio.sleep(1)
        assert (await rt.suspend(job.id)).status is JobStatus.SUSPENDING
        await trio.sleep(1)
        assert (await rt.cancel(job.id)).status is JobStatus.CANCELING
        done = await rt.wait(job.id)
    assert done.status is JobStatus.CANCELED
