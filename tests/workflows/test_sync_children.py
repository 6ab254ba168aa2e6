"""Child jobs from plain ``def`` handlers (``SyncJobContext``): spawning,
waiting (the slot and thread given back meanwhile) and reading a chord's
results, from the handler's thread, on every store."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
import trio
from pydantic import BaseModel

from runtime import JobStatus, Registry, Runtime, SyncJobContext
from tests.conftest import QUIET

pytestmark = pytest.mark.trio


class Fan(BaseModel):
    n: int = 3


class Item(BaseModel):
    i: int


class Book:
    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.release = threading.Event()  # the children end once it is set
        self.threads: set[bool] = set()  # whether each sync call ran off the loop's thread


@pytest.fixture
def book(registry: Registry) -> Book:
    book = Book()
    loop_thread = threading.get_ident()

    @registry.job(name="item", max_retries=0)
    def item(ctx: SyncJobContext, params: Item) -> int:
        book.release.wait(20)
        return params.i * 10

    @registry.job(name="sync_fan", max_retries=0)
    def sync_fan(ctx: SyncJobContext, params: Fan) -> list[object]:
        book.runs["fan"] += 1
        book.threads.add(threading.get_ident() != loop_thread)
        first = ctx.spawn("item", {"i": 0}, key="first")
        rest = ctx.spawn_many("item", ({"i": i} for i in range(1, params.n)))
        assert first.parent_id == ctx.id and len(rest) == params.n - 1
        done = ctx.wait_children()
        chosen = ctx.wait_children([first])  # all ended: returns at once
        return [[r.result for r in done], [r.result for r in chosen]]

    @registry.job(name="sync_sum", max_retries=0)
    def sync_sum(ctx: SyncJobContext, params: Fan) -> int:
        return sum(r.result for r in ctx.iter_dependency_results(page=2))

    return book


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: object) -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, "grace_period": 5.0, **options})  # type: ignore[arg-type]

    return make


async def test_a_sync_parent_spawns_waits_with_its_slot_given_back_and_reads_results(
    on_store: Callable[..., Runtime], book: Book
) -> None:
    with trio.fail_after(30):
        # One slot: had the waiting parent kept it, its children could never run.
        async with on_store(queues={"default": 1}) as rt:
            parent = await rt.enqueue("sync_fan", {"n": 3})
            with rt.subscribe(parent.id) as events:
                if (await rt.get(parent.id)).status is not JobStatus.BLOCKED:
                    async for event in events:
                        if event.kind == "status" and event.status is JobStatus.BLOCKED:
                            break
            book.release.set()
            done = await rt.wait(parent.id)
            assert done.status is JobStatus.COMPLETED, done.error
            assert done.result == [[0, 10, 20], [0]]
            children = await rt.children(parent.id)
            assert [c.params["i"] for c in children] == [0, 1, 2]
    assert book.runs["fan"] == 2  # before and after the wait; no child spawned twice
    assert book.threads == {True}


async def test_a_sync_chord_callback_pages_through_its_members_results(
    on_store: Callable[..., Runtime], book: Book
) -> None:
    book.release.set()
    with trio.fail_after(30):
        async with on_store() as rt:
            chord = await rt.enqueue_chord("item", [{"i": i} for i in range(5)], "sync_sum", {})
            done = await rt.wait(chord.callback.id)
    assert (done.status, done.result) == (JobStatus.COMPLETED, 100)
