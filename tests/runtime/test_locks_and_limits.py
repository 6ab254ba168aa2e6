from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing
from pydantic import BaseModel
from sqlalchemy import select

from runtime import Job, JobContext, JobStatus, Registry, Runtime
from runtime.domain.errors import InvalidJobType, InvalidParams, UnknownQueue
from runtime.store.engine import open_engine
from runtime.store.tables import type_starts
from tests.runtime.control_jobs import Trace, register

pytestmark = pytest.mark.trio


class Named(BaseModel):
    name: str


async def test_jobs_sharing_a_lock_key_never_run_at_once(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    register(registry, trace, lock="{path}")
    async with make_runtime(queues={"default": 5}) as rt:
        first = await rt.enqueue("work", {"name": "a", "path": "/x"})
        await trio.sleep(0.5)
        jobs = [
            await rt.enqueue("work", {"name": "b", "path": "/x"}, priority=1),
            await rt.enqueue("work", {"name": "c", "path": "/x"}, priority=5),
            await rt.enqueue("work", {"name": "other", "path": "/y"}),
        ]
        waiting_b = await rt.get(jobs[0].id)
        for job in [first, *jobs]:
            assert (await rt.wait(job.id)).status is JobStatus.COMPLETED
    assert waiting_b.status is JobStatus.LOCKED and waiting_b.locked_by == str(first.id)
    assert waiting_b.lock_key == "/x"
    assert trace.peak == {"/x": 1, "/y": 1}
    assert [n for n in trace.started if n != "other"] == ["a", "c", "b"]  # priority order after a


async def test_lock_keys_are_each_tenants_own(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    store_url: str,
    mock_clock: trio.testing.MockClock,
) -> None:
    trace = Trace()
    register(registry, trace, lock="{path}")
    async with make_runtime(url=store_url, queues={"default": 5}) as rt:
        first = await rt.enqueue("work", {"name": "a1", "path": "/x"}, tenant_id="a")
        await trio.sleep(0.5)
        others = [
            await rt.enqueue("work", {"name": "b1", "path": "/x"}, tenant_id="b"),
            await rt.enqueue("work", {"name": "none", "path": "/x"}),
            await rt.enqueue("work", {"name": "a2", "path": "/x"}, tenant_id="a"),
        ]
        await trio.sleep(0.5)
        during = [await rt.get(job.id) for job in others]
        for job in [first, *others]:
            assert (await rt.wait(job.id)).status is JobStatus.COMPLETED
    assert [(j.status, j.locked_by) for j in during] == [
        (JobStatus.RUNNING, None),
        (JobStatus.RUNNING, None),
        (JobStatus.LOCKED, str(first.id)),
    ]
    assert trace.peak == {"/x": 3}  # a1, b1 and the job without a tenant
    assert trace.started.index("a2") > trace.started.index("none")


async def test_explicit_lock_key_and_template_errors(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Trace(), lock="{missing}")
    async with make_runtime(workers=False) as rt:
        with pytest.raises(InvalidParams, match="lock template"):
            await rt.enqueue("work", {})
        job = await rt.enqueue("work", {}, lock_key="explicit")
    assert job.lock_key == "explicit"


async def test_max_concurrency_caps_a_type_across_the_runtime(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    register(registry, trace, max_concurrency=2)
    async with make_runtime(queues={"default": 10}) as rt:
        jobs = await rt.enqueue_many("work", [{"name": str(i)} for i in range(7)])
        for job in jobs:
            await rt.wait(job.id)
        started = trio.current_time()
    assert trace.peak == {"/data": 2}
    assert started == pytest.approx(12.0)  # ceil(7 / 2) rounds of 3 steps of a second


async def test_a_type_at_its_limit_does_not_hold_back_other_types_of_its_queue(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    register(registry, trace, name="limited", max_concurrency=1)
    register(registry, trace, name="free")
    async with make_runtime(queues={"default": 5}) as rt:
        limited = await rt.enqueue_many("limited", [{"name": "l1"}, {"name": "l2"}])
        await trio.sleep(0.5)  # l1 runs: its type is full
        free = await rt.enqueue_many("free", [{"name": f"f{i}", "steps": 1} for i in range(3)])
        for job in free:
            assert (await rt.wait(job.id)).status is JobStatus.COMPLETED
        assert trio.current_time() < 3.0  # before l1 ends and lets l2 start
        for job in limited:
            assert (await rt.wait(job.id)).status is JobStatus.COMPLETED
    assert trace.started[0] == "l1" and trace.started[4] == "l2"
    assert sorted(trace.started[1:4]) == ["f0", "f1", "f2"]  # one enqueue: no order among them


async def test_rate_limit_holds_jobs_back_without_dropping_them(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    register(registry, trace, rate_limit="2/minute")
    async with make_runtime(queues={"default": 10}) as rt:
        jobs = await rt.enqueue_many("work", [{"name": str(i), "steps": 0} for i in range(5)])
        done = [await rt.wait(job.id) for job in jobs]
    starts = sorted(round((j.started_at - done[0].created_at).total_seconds()) for j in done)  # type: ignore[operator]
    assert starts == [0, 0, 60, 60, 120]


class MayFail(BaseModel):
    fail: bool = False


async def test_rate_limit_counts_every_start_of_a_retried_job(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    store_url: str,
    mock_clock: trio.testing.MockClock,
) -> None:
    starts: list[float] = []

    @registry.job(name="rated", rate_limit="2/minute", max_retries=1, retry_delay=0.0)
    async def rated(ctx: JobContext, params: MayFail) -> None:
        starts.append(trio.current_time())
        if params.fail and ctx.attempt == 1:
            raise RuntimeError("once")

    async with make_runtime(url=store_url, queues={"default": 5}) as rt:
        retried = await rt.enqueue("rated", {"fail": True})
        assert (await rt.wait(retried.id)).status is JobStatus.COMPLETED
        assert starts == [0.0, 0.0]  # two starts of one job: the window is full
        other = await rt.enqueue("rated", {})
        assert (await rt.wait(other.id)).status is JobStatus.COMPLETED
        assert starts[2] == pytest.approx(60.0)  # when the first start left the window
        # A window later, two more starts at once: the starts that left it were dropped.
        await trio.sleep(120)
        both = await rt.enqueue_many("rated", [{}, {}])
        for job in both:
            assert (await rt.wait(job.id)).status is JobStatus.COMPLETED
    assert starts[3] == starts[4]
    engine = open_engine(store_url)
    with engine.connect() as conn:
        kept = conn.execute(select(type_starts.c.started_at)).scalars().all()
    engine.dispose()
    assert len(kept) == 2 and kept[0] == kept[1]  # the last claim dropped the three before


async def test_a_types_limits_hold_for_its_jobs_on_another_queue(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    register(registry, trace, name="capped", max_concurrency=1)  # on "default"
    register(registry, trace, name="rated", rate_limit="1/minute")
    async with make_runtime(queues={"default": 5, "other": 5}) as rt:
        capped = await rt.enqueue_many(
            "capped", [{"name": f"c{i}"} for i in range(3)], queue="other"
        )
        rated = await rt.enqueue_many(
            "rated", [{"name": f"r{i}", "steps": 0} for i in range(2)], queue="other"
        )
        for job in capped:
            assert (await rt.wait(job.id)).status is JobStatus.COMPLETED
        done = [await rt.wait(job.id) for job in rated]
    assert trace.peak["/data"] == 1 + 1  # one capped job, beside one rated job at most
    gap = abs((done[1].started_at - done[0].started_at).total_seconds())  # type: ignore[operator]
    assert gap >= 60


async def test_a_held_back_job_starts_when_its_types_running_job_backs_off_to_retry(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    starts: dict[str, list[float]] = {}

    @registry.job(name="limited", max_concurrency=1, max_retries=1, retry_delay=100.0)
    async def limited(ctx: JobContext, params: Named) -> None:
        starts.setdefault(params.name, []).append(trio.current_time())
        await trio.sleep(1)
        if params.name == "a" and ctx.attempt == 1:
            raise RuntimeError("retry me later")

    async with make_runtime(queues={"default": 5}) as rt:
        a = await rt.enqueue("limited", {"name": "a"})
        await trio.sleep(0.5)
        b = await rt.enqueue("limited", {"name": "b"})  # held back while a runs
        assert (await rt.wait(b.id)).status is JobStatus.COMPLETED
        assert (await rt.wait(a.id)).status is JobStatus.COMPLETED
    assert starts["b"] == [pytest.approx(1.0)]  # when a's first attempt ended, not at a poll
    assert starts["a"][0] == 0.0 and starts["a"][1] > 50.0  # after its (jittered) backoff


async def test_bad_limits_are_refused_at_registration(registry: Registry) -> None:
    with pytest.raises(InvalidJobType, match="rate limit '3 per minute' is not N/period"):
        register(registry, Trace(), rate_limit="3 per minute")
    with pytest.raises(InvalidJobType, match="max_concurrency must be >= 1"):
        register(registry, Trace(), max_concurrency=0)


async def test_queue_capacity_changes_at_run_time(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    register(registry, trace)
    async with make_runtime(queues={"default": 1}) as rt:
        jobs = await rt.enqueue_many("work", [{"name": str(i), "path": "p"} for i in range(4)])
        await trio.sleep(0.5)
        rt.set_queue_capacity("default", 4)
        for job in jobs:
            await rt.wait(job.id)
        with pytest.raises(UnknownQueue, match="unknown queue 'nope'"):
            rt.set_queue_capacity("nope", 1)
        with pytest.raises(ValueError, match="capacity must be >= 0"):
            rt.set_queue_capacity("default", -1)
        for capacity in (float("nan"), 2.5, True):  # NaN passed the `< 0` check
            with pytest.raises(ValueError, match=r"capacity must be >= 0 \(an int\)"):
                rt.set_queue_capacity("default", capacity)  # type: ignore[arg-type]
    assert trace.peak == {"p": 4}


async def test_paused_queue_starts_nothing_until_resumed_and_survives_restart(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    register(registry, trace)
    async with make_runtime() as rt:
        await rt.pause_queue("default")
        job = await rt.enqueue("work", {})
        await trio.sleep(100)
        assert (await rt.get(job.id)).status is JobStatus.WAITING
        assert (await rt.statistics())["default"].paused
    async with make_runtime() as rt:
        await trio.sleep(100)
        assert trace.started == []  # still paused after a restart
        await rt.resume_queue("default")
        assert (await rt.wait(job.id)).status is JobStatus.COMPLETED


async def test_pausing_lets_running_jobs_finish(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    register(registry, Trace())
    async with make_runtime() as rt:
        job = await rt.enqueue("work", {})
        await trio.sleep(0.5)
        await rt.pause_queue("default")
        assert (await rt.wait(job.id)).status is JobStatus.COMPLETED


class Keyed(BaseModel):
    key: str = ""


async def _others_start_past_a_window_of_held_back_jobs(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    url: str,
    held: list[dict[str, str]],
    **options: object,
) -> None:
    """30 due jobs of "held" (more than a claim's window of candidates), of which
    locks or limits let one run, ahead of 3 due "free" jobs: the queue's other
    slots start the free ones at once, not at the next poll."""
    free_started = 0
    all_free_started = trio.Event()
    release = trio.Event()

    @registry.job(name="held", max_retries=0, **options)  # type: ignore[call-overload]
    async def held_job(ctx: JobContext, params: Keyed) -> None:
        await release.wait()

    @registry.job(name="free", max_retries=0)
    async def free_job(ctx: JobContext, params: Keyed) -> None:
        nonlocal free_started
        free_started += 1
        if free_started == 3:
            all_free_started.set()

    async with make_runtime(url=url, workers=False) as rt:  # all due before the first claim
        await rt.enqueue_many("held", held, priority=1)
        await rt.enqueue_many("free", [{}] * 3)
    async with make_runtime(url=url, queues={"default": 4}):
        with trio.fail_after(60):  # far less than the poll interval
            await all_free_started.wait()
        release.set()


async def test_a_type_at_its_limit_does_not_hide_due_jobs_past_the_claims_window(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    store_url: str,
    mock_clock: trio.testing.MockClock,
) -> None:
    await _others_start_past_a_window_of_held_back_jobs(
        make_runtime, registry, store_url, [{}] * 30, max_concurrency=1
    )


async def test_jobs_of_one_lock_do_not_hide_due_jobs_past_the_claims_window(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    store_url: str,
    mock_clock: trio.testing.MockClock,
) -> None:
    await _others_start_past_a_window_of_held_back_jobs(
        make_runtime, registry, store_url, [{"key": "k"}] * 30, lock="{key}"
    )


async def _started_after_key_freed(rt: Runtime, holder: Job, later: Job) -> float:
    """Seconds from the end of ``holder`` to the start of ``later`` (both completed)."""
    h, w = await rt.wait(holder.id), await rt.wait(later.id)
    assert h.status is JobStatus.COMPLETED and w.status is JobStatus.COMPLETED
    assert h.finished_at is not None and w.started_at is not None
    return (w.started_at - h.finished_at).total_seconds()


# A long poll: a job nothing wakes would start a poll (600 s) after its key frees.


async def test_a_job_that_comes_due_on_a_held_key_waits_locked_and_starts_when_it_frees(
    store_url: str,
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    mock_clock: trio.testing.MockClock,
) -> None:
    register(registry, Trace(), lock="{path}")
    async with make_runtime(url=store_url, queues={"default": 5}, poll_interval=600.0) as rt:
        holder = await rt.enqueue("work", {"name": "h", "path": "/k"})  # runs t=0..3
        later = await rt.enqueue("work", {"name": "w", "path": "/k"}, delay=1.0)
        await trio.sleep(1.5)
        due = await rt.get(later.id)
        assert (due.status, due.locked_by) == (JobStatus.LOCKED, str(holder.id))
        assert await _started_after_key_freed(rt, holder, later) < 1.0


async def test_a_job_resumed_or_retried_on_a_held_key_waits_locked_and_starts_when_it_frees(
    store_url: str,
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    mock_clock: trio.testing.MockClock,
) -> None:
    register(registry, Trace(), lock="{path}")
    async with make_runtime(url=store_url, queues={"default": 5}, poll_interval=600.0) as rt:
        holder = await rt.enqueue("work", {"name": "h", "path": "/k"})  # runs t=0..3
        await trio.sleep(0.5)
        resumed = await rt.enqueue("work", {"name": "r", "path": "/k"})
        retried = await rt.enqueue("work", {"name": "c", "path": "/k"})
        await rt.suspend(resumed.id)
        await rt.cancel(retried.id)
        for job in (await rt.resume(resumed.id), await rt.retry(retried.id)):
            assert (job.status, job.locked_by) == (JobStatus.LOCKED, str(holder.id))
            stored = await rt.get(job.id)
            assert (stored.status, stored.locked_by) == (JobStatus.LOCKED, str(holder.id))
        # One of them starts when the key frees, the other when that one ends.
        gaps = [await _started_after_key_freed(rt, holder, j) for j in (resumed, retried)]
        assert min(gaps) < 1.0


class Held(BaseModel):
    hold: bool = False


async def test_a_job_parked_on_a_lock_and_released_announces_both_with_new_revisions(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    gate = trio.Event()

    @registry.job(name="locky", max_retries=0)
    async def locky(ctx: JobContext, params: Held) -> None:
        if params.hold:
            await gate.wait()

    async with make_runtime(queues={"default": 1}) as rt:
        await rt.pause_queue("default")
        holder = await rt.enqueue("locky", {"hold": True}, lock_key="k", priority=5)
        parked = await rt.enqueue("locky", {}, lock_key="k")  # both waiting
        sub = rt.subscribe(parked.id)
        await rt.resume_queue("default")  # the claim of the holder parks the other
        seen: list[tuple[str, int]] = []
        async for event in sub:
            if event.kind == "status":
                assert event.status is not None and event.revision is not None
                seen.append((event.status.value, event.revision))
                if event.status is JobStatus.LOCKED:
                    locked = await rt.get(parked.id)
                    gate.set()  # the holder ends: its lock lets the other wait again
            if event.is_final:
                break
        done = await rt.get(parked.id)
        assert (await rt.get(holder.id)).status is JobStatus.COMPLETED
    assert [s for s, _ in seen] == ["locked", "waiting", "running", "completed"]
    revisions = [r for _, r in seen]
    assert revisions == sorted(set(revisions)) and revisions[0] == parked.revision + 1
    assert locked.revision == revisions[0] and done.revision == revisions[-1]
