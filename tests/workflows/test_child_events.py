"""A parent's event stream shows its children moving (``child`` events), and
costs nothing when nobody watches the parent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from pydantic import BaseModel

import runtime.jobs.events as bus_module
from runtime import JobContext, JobEvent, JobStatus, Registry, Runtime
from runtime.domain.models import child_event

pytestmark = pytest.mark.trio


class Fan(BaseModel):
    n: int = 2


class Item(BaseModel):
    i: int


class Gates:
    def __init__(self) -> None:
        self.spawn = trio.Event()  # the parent spawns once it is set
        self.end = trio.Event()  # the children end once it is set

    def set(self) -> None:
        self.spawn.set()
        self.end.set()


@pytest.fixture
def gate(registry: Registry) -> Gates:
    gate = Gates()

    @registry.job(name="item", max_retries=0)
    async def item(ctx: JobContext, params: Item) -> int:
        await gate.end.wait()
        return params.i

    @registry.job(name="fan", max_retries=0)
    async def fan(ctx: JobContext, params: Fan) -> list[object]:
        await gate.spawn.wait()
        await ctx.spawn_many("item", [{"i": i} for i in range(params.n)])
        return [r.result for r in await ctx.wait_children()]

    return gate


async def test_a_parents_events_show_its_children_start_and_end_and_go_on_after(
    make_runtime: Callable[..., Runtime], gate: Gates
) -> None:
    with trio.fail_after(30):
        async with make_runtime() as rt:
            parent = await rt.enqueue("fan", {"n": 2})
            seen: list[JobEvent] = []
            async for event in rt.events(parent.id):
                seen.append(event)
                gate.spawn.set()  # watched from here on: spawn
                running = {e.child_id for e in seen if e.child_status == "running"}
                if len(running) == 2:
                    gate.end.set()  # both children have started: let them end
    child = [e for e in seen if e.kind == "child"]
    assert {e.job_id for e in child} == {parent.id}
    ids = {e.child_id for e in child}
    assert len(ids) == 2
    for child_id in ids:
        statuses = [e.child_status for e in child if e.child_id == child_id]
        # Stored (waiting), started, ended: in that order.
        assert statuses == ["waiting", "running", "completed"]
    assert all(e.type == "item" and e.revision is None and e.parent_id is None for e in child)
    assert all(not e.is_final for e in child)
    assert child[-1].message is not None and child[-1].message.endswith("item: completed")
    # The stream ends on the parent's own end, after both children's.
    last = seen[-1]
    assert (last.kind, last.job_id, last.status) == ("status", parent.id, JobStatus.COMPLETED)
    assert seen.index(child[-1]) < len(seen) - 1


async def test_no_child_event_is_built_when_nobody_watches_the_parent(
    make_runtime: Callable[..., Runtime], gate: Gates, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[JobEvent] = []

    def counting(event: JobEvent) -> JobEvent:
        made = child_event(event)
        built.append(made)
        return made

    monkeypatch.setattr(bus_module, "child_event", counting)
    gate.set()
    with trio.fail_after(30):
        async with make_runtime() as rt:
            parent = await rt.enqueue("fan", {"n": 3})
            # Waited for through a job that runs after it: nobody watches the parent.
            after = await rt.enqueue("item", {"i": 9}, depends_on=[parent.id])
            assert (await rt.wait(after.id)).status is JobStatus.COMPLETED
            assert (await rt.get(parent.id)).result == [0, 1, 2]
            assert built == []
            watched = await rt.enqueue("fan", {"n": 1})
            with rt.subscribe(watched.id) as events:
                await rt.wait(watched.id)
                kinds = [e.kind for e in _drain(events)]
    assert kinds.count("child") == len(built) > 0


def _drain(events: bus_module.JobSubscription) -> list[JobEvent]:
    out = []
    while (event := events.receive_nowait()) is not None:
        out.append(event)
    return out
