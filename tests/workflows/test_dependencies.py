"""Job dependencies (``depends_on``) on every store: released when all complete,
skipped when one does not, kept across restarts, refused for unknown ids."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import trio
from pydantic import BaseModel
from sqlalchemy import case, func, select, update
from sqlalchemy.engine import Connection

from runtime import Fail, JobContext, JobNotFound, JobRetention, JobStatus, Registry, Runtime
from runtime.store.claim import Claim
from runtime.store.dependency_ops import settle_dependents
from runtime.store.ops import Finish
from runtime.store.tables import job_dependencies, jobs
from tests.conftest import QUIET

pytestmark = pytest.mark.trio

S = JobStatus


class Gates:
    """Jobs named by a key wait for the test to open their gate."""

    def __init__(self) -> None:
        self.gates: dict[str, trio.Event] = {}
        self.ran: list[str] = []

    def gate(self, key: str) -> trio.Event:
        return self.gates.setdefault(key, trio.Event())


class Step(BaseModel):
    key: str
    wait: bool = False
    fail: bool = False


@pytest.fixture
def gates(registry: Registry) -> Gates:
    gates = Gates()

    @registry.job(name="step", max_retries=0)
    async def step(ctx: JobContext, params: Step) -> str:
        if params.wait:
            await gates.gate(params.key).wait()
        gates.ran.append(params.key)
        if params.fail:
            raise Fail(f"{params.key} failed")
        return params.key

    return gates


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: object) -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, "grace_period": 5.0, **options})  # type: ignore[arg-type]

    return make


async def _statuses(rt: Runtime, job_id: uuid.UUID, until: JobStatus) -> list[JobStatus]:
    """The statuses the job's events announce, until ``until``."""
    seen: list[JobStatus] = []
    with rt.subscribe(job_id) as events:
        async for event in events:
            if event.kind == "status":
                seen.append(event.status)
                if event.status is until:
                    return seen
    return seen


async def test_a_dependent_waits_blocked_until_all_complete_then_runs(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            a = await rt.enqueue("step", {"key": "a", "wait": True})
            b = await rt.enqueue("step", {"key": "b", "wait": True})
            c = await rt.enqueue("step", {"key": "c"}, depends_on=[a.id, str(b.id)])
            assert c.status is S.BLOCKED
            assert await rt.dependencies(c.id) == sorted([a.id, b.id])
            async with trio.open_nursery() as nursery:
                seen: list[JobStatus] = []

                async def watch() -> None:
                    seen.extend(await _statuses(rt, c.id, S.COMPLETED))

                nursery.start_soon(watch)
                gates.gate("a").set()
                await rt.wait(a.id)
                assert (await rt.get(c.id)).status is S.BLOCKED
                gates.gate("b").set()
                assert (await rt.wait(c.id)).status is S.COMPLETED
            assert gates.ran.index("c") > max(gates.ran.index("a"), gates.ran.index("b"))
            assert seen[0] is S.WAITING and seen[-1] is S.COMPLETED  # announced on its stream
            log = [r.message for r in await rt.logs(c.id)]
            assert any("dependencies completed" in m for m in log)


async def test_a_failed_dependency_skips_its_dependents_with_the_reason(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            a = await rt.enqueue("step", {"key": "a", "wait": True, "fail": True})
            c = await rt.enqueue("step", {"key": "c"}, depends_on=[a.id])
            d = await rt.enqueue("step", {"key": "d"}, depends_on=[c.id])  # skipped in turn
            gates.gate("a").set()
            skipped = await rt.wait(d.id)
            c_done = await rt.get(c.id)
    assert (c_done.status, skipped.status) == (S.SKIPPED, S.SKIPPED)
    assert c_done.error == f"dependency {a.id} ended failed"
    assert skipped.error == f"dependency {c.id} ended skipped"
    assert gates.ran == ["a"]


async def test_run_on_failure_runs_once_every_dependency_ended(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            a = await rt.enqueue("step", {"key": "a", "wait": True, "fail": True})
            b = await rt.enqueue("step", {"key": "b", "wait": True})
            c = await rt.enqueue("step", {"key": "c"}, depends_on=[a.id, b.id], run_on_failure=True)
            gates.gate("a").set()
            await rt.wait(a.id)
            assert (await rt.get(c.id)).status is S.BLOCKED  # b has not ended yet
            gates.gate("b").set()
            assert (await rt.wait(c.id)).status is S.COMPLETED


async def test_canceling_a_dependency_skips_the_dependent_and_says_so_on_its_stream(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    with trio.fail_after(30):
        async with on_store(workers=False) as rt:
            a = await rt.enqueue("step", {"key": "a"})
            c = await rt.enqueue("step", {"key": "c"}, depends_on=[a.id])
            with rt.subscribe(c.id) as events:
                await rt.cancel(a.id, reason="not needed")
                event = await events.receive()
            assert (event.status, event.job_id) == (S.SKIPPED, c.id)
            assert (await rt.get(c.id)).error == f"dependency {a.id} ended canceled"


async def test_unknown_or_other_tenants_dependencies_are_refused_and_nothing_is_stored(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    async with on_store(workers=False) as rt:
        theirs = await rt.enqueue("step", {"key": "a"}, tenant_id="globex")
        mine = await rt.enqueue("step", {"key": "b"}, tenant_id="acme")
        with pytest.raises(JobNotFound):
            await rt.enqueue("step", {"key": "c"}, depends_on=[mine.id, uuid.uuid4()])
        with pytest.raises(JobNotFound):
            await rt.enqueue(
                "step", {"key": "c"}, depends_on=[mine.id, theirs.id], tenant_id="acme"
            )
        with pytest.raises(JobNotFound):
            await rt.enqueue("step", {"key": "c"}, depends_on=["not-an-id"])
        with pytest.raises(ValueError, match="at least one"):
            await rt.enqueue("step", {"key": "c"}, depends_on=[])
        assert await rt.count() == 2
        edges = await rt.store.read(
            lambda conn: conn.execute(select(func.count()).select_from(job_dependencies)).scalar()
        )
        assert edges == 0
        assert not (await rt.get(mine.id)).model_dump().get("has_dependents")
        # The same tenant's own job is a dependency like any other.
        ok = await rt.enqueue("step", {"key": "c"}, depends_on=[mine.id], tenant_id="acme")
        assert ok.status is S.BLOCKED


async def test_dependencies_already_ended_at_enqueue_are_honoured_at_once(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            done = await rt.enqueue("step", {"key": "a"})
            failed = await rt.enqueue("step", {"key": "b", "fail": True})
            await rt.wait(done.id)
            await rt.wait(failed.id)
            ready = await rt.enqueue("step", {"key": "c"}, depends_on=[done.id])
            assert ready.status is S.WAITING
            skipped = await rt.enqueue("step", {"key": "d"}, depends_on=[done.id, failed.id])
            assert skipped.status is S.SKIPPED and skipped.is_finished
            assert skipped.error == f"dependency {failed.id} ended failed"
            assert (await rt.wait(ready.id)).status is S.COMPLETED
    assert "d" not in gates.ran


async def test_a_restart_resumes_waiting_dependents(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    async with on_store(workers=False) as rt:
        a = await rt.enqueue("step", {"key": "a"})
        c = await rt.enqueue("step", {"key": "c"}, depends_on=[a.id])
        assert c.status is S.BLOCKED
    # Another process: everything it needs is in the store.
    with trio.fail_after(30):
        async with on_store() as rt:
            assert (await rt.wait(c.id)).status is S.COMPLETED
    assert gates.ran == ["a", "c"]


async def test_only_jobs_with_dependents_are_flagged(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    async with on_store(workers=False) as rt:
        a = await rt.enqueue("step", {"key": "a"})
        b = await rt.enqueue("step", {"key": "b"})
        await rt.enqueue("step", {"key": "c"}, depends_on=[a.id])
        flags = await rt.store.read(
            lambda conn: dict(conn.execute(select(jobs.c.id, jobs.c.has_dependents)).all())
        )
    assert flags[a.id] and not flags[b.id]


async def test_pruning_a_finished_dependent_takes_its_dependency_rows(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            a = await rt.enqueue("step", {"key": "a"})
            b = await rt.enqueue("step", {"key": "b"}, depends_on=[a.id])
            assert (await rt.wait(b.id, timeout=20)).status is S.COMPLETED
            await rt.prune(JobRetention(completed=None, max_finished=0))
            left = await rt.store.read(
                lambda conn: conn.execute(
                    select(func.count()).select_from(job_dependencies)
                ).scalar_one()
            )
    assert left == 0


async def test_finishes_recorded_together_settle_the_dependents_of_each(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    async with on_store(workers=False) as rt:
        a = await rt.enqueue("step", {"key": "a"})
        b = await rt.enqueue("step", {"key": "b"})
        c = await rt.enqueue("step", {"key": "c"}, depends_on=[b.id])
        claimed = (await rt.store.write(Claim("default", 2, "w", now=rt.clock.now()))).rows
        assert {row["id"] for row in claimed} == {a.id, b.id}
        now = rt.clock.now()
        done = {"status": "completed", "finished_at": now, "updated_at": now, "result": None}
        # Submitted together: the writer records them in one statement run for each.
        pendings = [rt.store.submit(Finish(row["id"], "w", dict(done))) for row in claimed]
        results = {row["id"]: await p.wait() for row, p in zip(claimed, pendings, strict=True)}
        assert results[a.id].dependents == []
        assert [d["id"] for d in results[b.id].dependents] == [c.id]
        assert (await rt.get(c.id)).status is S.WAITING


class _EndAndSettle:
    """End ``ended`` jobs (the last of them failed) and settle their dependents
    as one batch, the way finishes recorded together do."""

    def __init__(self, ended: list[uuid.UUID], now: float) -> None:
        self.ended, self.now = ended, now

    def apply(self, conn: Connection) -> list[dict[str, Any]]:
        failed = self.ended[-1]
        conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(self.ended))
            .values(status=case((jobs.c.id == failed, "failed"), else_="completed"))
        )
        return settle_dependents(conn, self.ended, self.now)


async def test_a_batch_of_endings_larger_than_one_read_settles_each_dependent(
    on_store: Callable[..., Runtime], gates: Gates
) -> None:
    # 600 endings take two reads of the dependency rows (512 ids each at most,
    # padded with repeats): a dependent counted down once in each, and a
    # dependency that failed in the second.
    async with on_store(workers=False) as rt:
        ended = [j.id for j in await rt.enqueue_many("step", [{"key": "x"}] * 600)]
        both = await rt.enqueue("step", {"key": "both"}, depends_on=[ended[0], ended[520]])
        failing = await rt.enqueue("step", {"key": "fails"}, depends_on=[ended[-1]])
        untouched = await rt.enqueue("step", {"key": "later"}, depends_on=[both.id])
        settled = await rt.store.write(_EndAndSettle(ended, rt.clock.now()))
        assert {row["id"] for row in settled} == {both.id, failing.id}
        assert (await rt.get(both.id)).status is S.WAITING
        skipped = await rt.get(failing.id)
        assert (skipped.status, skipped.error) == (
            S.SKIPPED,
            f"dependency {ended[-1]} ended failed",
        )
        assert (await rt.get(untouched.id)).status is S.BLOCKED
