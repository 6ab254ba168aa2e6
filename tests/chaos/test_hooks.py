"""Status hooks under bursts and failing receivers, on real sockets and the real clock.

A burst of changes must reach a healthy receiver in order and at once (no
polling between deliveries), and a receiver that fails must rest on its own,
without holding back the hooks of any other URL.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from pydantic import BaseModel

from runtime import JobContext, Registry, Retry, Runtime
from runtime.api.hooks import HOOK_TYPE, Hooks, HookSettings
from tests.api.hook_receiver import (
    LOOPBACK,
    SECRET,
    Receiver,
    delivery_reaching,
    receiving,
    running,
)
from tests.api.jobs import Echo

LAG_MAX = 1.0  # seconds from a job's last change to its last hook's arrival


class Burst(BaseModel):
    check_ins: int
    failures: int = 0


def _register(registry: Registry) -> None:
    @registry.job(name="burst", max_retries=5)
    async def burst(ctx: JobContext, params: Burst) -> int:
        if ctx.job.attempt <= params.failures:
            raise Retry(after=0.01, reason="not yet")
        for n in range(params.check_ins):
            await ctx.check_in(f"step {n}")
        return params.check_ins

    @registry.job(name="echo", max_retries=0)
    async def echo(ctx: JobContext, params: Echo) -> object:
        return params.value


def _hooks(registry: Registry, **options: float) -> Hooks:
    _register(registry)
    settings = HookSettings(SECRET, attempts=3, policy=LOOPBACK, **options)
    return Hooks(registry, settings)


async def _finished_at(rt: Runtime, job_id: object) -> float:
    """When (trio's clock) the job's final status event came."""
    with rt.subscribe(job_id) as events:  # type: ignore[arg-type]
        job = await rt.get(job_id)  # type: ignore[arg-type]
        if job.is_finished:
            return trio.current_time()
        async for event in events:
            if event.is_final:
                return trio.current_time()
    raise AssertionError("the job's events ended early")


def _final(receiver: Receiver, job_id: object) -> Callable[[list[object]], bool]:
    def done(requests: list[object]) -> bool:
        return any(
            r.body["job_id"] == str(job_id) and r.body["status"] in ("completed", "failed")
            for r in receiver.requests
        )

    return done


@pytest.mark.trio
async def test_a_burst_of_changes_reaches_a_healthy_receiver_in_order_within_a_second(
    make_runtime: Callable[..., Runtime], registry: Registry, long_run: bool
) -> None:
    hooks = _hooks(registry)
    rounds = 10 if long_run else 1
    lags: list[float] = []
    with trio.fail_after(60 * rounds):
        async with receiving() as receiver, running(make_runtime, hooks) as rt:
            for _ in range(rounds):
                # Like the report: two retries, then the changes come as fast as they can.
                job = await rt.enqueue(
                    "burst", {"check_ins": 17, "failures": 2}, status_hook=receiver.url
                )
                finished = await _finished_at(rt, job.id)
                await receiver.wait_for(_final(receiver, job.id))
                mine = [r for r in receiver.requests if r.body["job_id"] == str(job.id)]
                lags.append(mine[-1].at - finished)
                revisions = [r.body["revision"] for r in mine]
                assert revisions == sorted(set(revisions)), revisions
                assert len(mine) >= 20 and mine[-1].body["status"] == "completed"
                assert all(r.status == 200 for r in mine)
    assert max(lags) < LAG_MAX, lags


@pytest.mark.trio
async def test_a_failing_hook_url_rests_alone_and_delays_no_other(
    make_runtime: Callable[..., Runtime], registry: Registry, long_run: bool
) -> None:
    # After its first failure the failing URL rests 30 s: any hook that waited on
    # it would miss the deadline below by far.
    hooks = _hooks(registry, backoff=30.0)
    rounds = 5 if long_run else 1
    with trio.fail_after(60):
        async with (
            receiving(default=500) as failing,
            receiving() as healthy,
            running(make_runtime, hooks) as rt,
        ):
            first = await rt.enqueue("echo", {"value": 1}, status_hook=failing.url)
            await failing.wait_for(lambda rs: len(rs) == 1)
            # Its failure is noted before it is stored as scheduled.
            await delivery_reaching(rt, f"hook:{first.id}:1:waiting:status", "scheduled")
            # Another job to the failing URL parks behind its rest, sending nothing.
            await rt.enqueue("echo", {"value": 2}, status_hook=failing.url)
            for _ in range(rounds):
                started = trio.current_time()
                job = await rt.enqueue("burst", {"check_ins": 5}, status_hook=healthy.url)
                await healthy.wait_for(_final(healthy, job.id))
                mine = [r for r in healthy.requests if r.body["job_id"] == str(job.id)]
                assert mine[-1].at - started < LAG_MAX
                assert [r.status for r in mine] == [200] * len(mine)
            parked = await rt.list(type=HOOK_TYPE, status="scheduled", limit=100)
    assert len(failing.requests) == 1  # one probe; everything else waits for the rest
    assert len(parked) >= 3  # both jobs' later deliveries, parked without a slot
