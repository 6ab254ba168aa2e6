"""Child jobs (``ctx.spawn``, ``ctx.wait_children``) on every store: a waiting
parent gives its slot back and runs again when its children end, spawns are
not repeated, a cancel reaches the children, and a restart loses nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import trio
from pydantic import BaseModel

from runtime import Fail, JobContext, JobRetention, JobStatus, Registry, Runtime
from tests.conftest import QUIET

pytestmark = pytest.mark.trio

S = JobStatus


class Fan(BaseModel):
    n: int = 3
    queue: str = "default"
    fail_at: int = -1
    wait: bool = False  # its children wait for the book's gate


class Item(BaseModel):
    i: int
    fail: bool = False
    wait: bool = False


class Book:
    """What ran, and gates the test opens."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.gate = trio.Event()
        self.results: list[object] = []


@pytest.fixture
def book(registry: Registry) -> Book:
    book = Book()

    @registry.job(name="item", max_retries=0)
    async def item(ctx: JobContext, params: Item) -> int:
        book.runs[f"item-{params.i}"] += 1
        if params.wait:
            await book.gate.wait()
        if params.fail:
            raise Fail(f"item {params.i} failed")
        return params.i * 10

    @registry.job(name="fan", max_retries=0)
    async def fan(ctx: JobContext, params: Fan) -> list[object]:
        book.runs["fan"] += 1
        for i in range(params.n):
            item = {"i": i, "fail": i == params.fail_at, "wait": params.wait}
            await ctx.spawn("item", item, queue=params.queue)
        done = await ctx.wait_children()
        book.results = [(r.status.value, r.result, r.error) for r in done]
        return [r.result for r in done]

    return book


async def until(rt: Runtime, job_id: object, status: JobStatus) -> None:
    """Return once the job is ``status`` (told by its events, or found so)."""
    with rt.subscribe(job_id) as events:  # type: ignore[arg-type]
        if (await rt.get(job_id)).status is status:  # type: ignore[arg-type]
            return
        async for event in events:
            if event.kind == "status" and event.status is status:
                return


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: object) -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, "grace_period": 5.0, **options})  # type: ignore[arg-type]

    return make


async def test_a_parent_waits_for_its_children_and_reads_their_results(
    on_store: Callable[..., Runtime], book: Book
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            parent = await rt.enqueue("fan", {"n": 3, "wait": True})
            await until(rt, parent.id, S.BLOCKED)  # its slot given back while they run
            book.gate.set()
            done = await rt.wait(parent.id)
            assert done.status is S.COMPLETED
            assert done.result == [0, 10, 20]
            assert done.attempt == 1  # waiting is not an attempt
            children = await rt.children(parent.id)
            assert [c.params["i"] for c in children] == [0, 1, 2]
            assert {c.parent_id for c in children} == {parent.id}
            assert await rt.count_children(parent.id) == 3
            listed = await rt.list(parent_id=parent.id)
            assert {j.id for j in listed} == {c.id for c in children}
            assert await rt.count(parent_id=parent.id) == 3
    # The parent ran twice (before and after the wait); each child once.
    assert book.runs["fan"] == 2
    assert all(book.runs[f"item-{i}"] == 1 for i in range(3))


async def test_waiting_parents_do_not_starve_a_queue_of_its_slots(
    on_store: Callable[..., Runtime], book: Book
) -> None:
    """Capacity 2, ten parents whose children share their queue: had a waiting
    parent kept its slot, two parents would hold both and their children
    would never start."""
    with trio.fail_after(60):
        async with on_store(queues={"default": 2}) as rt:
            parents = [await rt.enqueue("fan", {"n": 2}) for _ in range(10)]
            for parent in parents:
                done = await rt.wait(parent.id)
                assert done.status is S.COMPLETED, done.error
                assert done.result == [0, 10]


async def test_many_waiting_parents_share_a_queue_of_ten_with_their_children(
    on_store: Callable[..., Runtime], book: Book, long_run: bool
) -> None:
    """Far more parents than slots, all waiting at once: the children still run."""
    count = 2000 if long_run else 150
    with trio.fail_after(600 if long_run else 120):
        async with on_store(queues={"default": 10}) as rt:
            parents = await rt.enqueue_many("fan", [{"n": 1, "wait": True}] * count)
            for parent in parents:
                await until(rt, parent.id, S.BLOCKED)
            assert await rt.count(status="blocked") == count
            book.gate.set()
            for parent in parents:
                assert (await rt.wait(parent.id)).result == [0]


async def test_a_failed_child_is_a_result_not_an_error(
    on_store: Callable[..., Runtime], book: Book
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            parent = await rt.enqueue("fan", {"n": 3, "fail_at": 1})
            done = await rt.wait(parent.id)
    assert done.status is S.COMPLETED
    assert book.results == [
        ("completed", 0, None),
        ("failed", None, "item 1 failed"),
        ("completed", 20, None),
    ]


async def test_spawn_keys_return_the_same_child_on_every_run(
    on_store: Callable[..., Runtime], registry: Registry, book: Book
) -> None:
    @registry.job(name="keyed", max_retries=0)
    async def keyed(ctx: JobContext, params: Fan) -> list[str]:
        book.runs["keyed"] += 1
        first = await ctx.spawn("item", {"i": 1}, key="one")
        again = await ctx.spawn("item", {"i": 1}, key="one")
        assert again.id == first.id
        many = await ctx.spawn_many("item", [{"i": 2}, {"i": 3}])
        await ctx.wait_children([first, *many])
        return [str(first.id), *(str(c.id) for c in many)]

    with trio.fail_after(30):
        async with on_store() as rt:
            parent = await rt.enqueue("keyed")
            done = await rt.wait(parent.id)
            assert done.status is S.COMPLETED, done.error
            children = await rt.children(parent.id)
    assert sorted(str(c.id) for c in children) == sorted(done.result)
    assert book.runs["keyed"] == 2
    assert book.runs["item-1"] == book.runs["item-2"] == book.runs["item-3"] == 1


async def test_cancelling_a_parent_cancels_its_unfinished_children(
    on_store: Callable[..., Runtime], registry: Registry, book: Book
) -> None:
    @registry.job(name="tree", max_retries=0)
    async def tree(ctx: JobContext, params: Fan) -> None:
        await ctx.spawn("item", {"i": 0})  # ends before the cancel
        await ctx.spawn("item", {"i": 1, "wait": True})  # runs as it comes
        await ctx.spawn("item", {"i": 2}, queue="unserved")  # never starts
        await ctx.wait_children()

    with trio.fail_after(30):
        async with on_store(queues={"default": 4}) as rt:
            parent = await rt.enqueue("tree")
            await until(rt, parent.id, S.BLOCKED)
            first, running, pending = await rt.children(parent.id)
            await rt.wait(first.id)
            await until(rt, running.id, S.RUNNING)
            await rt.cancel(parent.id, reason="enough")
            assert (await rt.wait(running.id)).status is S.CANCELED
            ended = await rt.get(pending.id)
            assert ended.status is S.CANCELED
            assert ended.cancel_reason == f"its parent {parent.id} was canceled"
            assert (await rt.get(first.id)).status is S.COMPLETED
            assert (await rt.get(parent.id)).status is S.CANCELED


async def test_a_waiting_parent_resumes_after_a_restart(
    on_store: Callable[..., Runtime], book: Book
) -> None:
    with trio.fail_after(30):
        async with on_store(queues={"default": 1}) as rt:
            parent = await rt.enqueue("fan", {"n": 2, "queue": "later"})
            await until(rt, parent.id, S.BLOCKED)
        # Another runtime serves the children's queue: their ends release it.
        async with on_store(queues={"default": 1, "later": 2}) as rt:
            done = await rt.wait(parent.id)
    assert done.status is S.COMPLETED
    assert done.result == [0, 10]
    assert book.runs["fan"] == 2


async def test_waiting_on_a_job_that_is_no_child_is_refused(
    on_store: Callable[..., Runtime], registry: Registry, book: Book
) -> None:
    @registry.job(name="stranger", max_retries=0)
    async def stranger(ctx: JobContext, params: Item) -> str:
        other = await ctx.spawn("item", {"i": 0})
        try:
            await ctx.wait_children([other.id, ctx.id])
        except ValueError as err:
            return str(err)
        return "no error"

    with trio.fail_after(30):
        async with on_store() as rt:
            job = await rt.enqueue("stranger", {"i": 0})
            done = await rt.wait(job.id)
    assert done.result == f"job {job.id} is not a child of job {job.id}"


async def test_steps_of_a_multi_step_job_spawn_and_wait_for_their_own_children(
    on_store: Callable[..., Runtime], book: Book
) -> None:
    """A step waiting on children gives the slot back (the job goes blocked)
    and goes on at that step; each step's spawns are its own (the second step's
    first spawn is not the first step's), and waiting spends no step retry."""
    with trio.fail_after(30):
        async with on_store() as rt:
            job = await rt.enqueue_steps(
                [
                    {"type": "fan", "params": {"n": 2, "wait": True}},
                    {"type": "fan", "params": {"n": 3}},
                ]
            )
            await until(rt, job.id, S.BLOCKED)
            book.gate.set()
            done = await rt.wait(job.id)
            assert done.status is S.COMPLETED, done.error
            assert done.steps is not None
            assert [s.result for s in done.steps] == [[0, 10], [0, 10, 20]]
            assert [s.attempts for s in done.steps] == [1, 1]
            assert done.attempt == 1
            assert await rt.count_children(job.id) == 5
    assert book.runs["item-2"] == 1  # only the second step spawned a third child


async def test_retention_keeps_what_an_unended_workflow_still_reads(
    on_store: Callable[..., Runtime], book: Book, registry: Registry
) -> None:
    """A finished child of a waiting parent, and a finished job a blocked job
    depends on, outlive a prune that takes everything else; once the workflow
    has ended they go too."""

    @registry.job(name="half", max_retries=0)
    async def half(ctx: JobContext, params: Fan) -> list[object]:
        await ctx.spawn_many("item", [{"i": 0}, {"i": 1, "wait": True}])
        return [r.result for r in await ctx.wait_children()]

    everything = JobRetention(completed=0, max_finished=0, max_finished_per_type=0)
    with trio.fail_after(30):
        async with on_store() as rt:
            loner = await rt.enqueue("item", {"i": 7})
            parent = await rt.enqueue("half", {})
            await until(rt, parent.id, S.BLOCKED)
            first, _held_child = await rt.children(parent.id)
            assert (await rt.wait(first.id)).status is S.COMPLETED
            done = await rt.enqueue("item", {"i": 8})
            held = await rt.enqueue("item", {"i": 9, "wait": True})
            after = await rt.enqueue("item", {"i": 10}, depends_on=[done.id, held.id])
            await rt.wait(done.id)
            await rt.wait(loner.id)
            await rt.prune(everything)
            left = {j.id for j in await rt.list(limit=100)}
            assert loner.id not in left
            assert {first.id, done.id} <= left  # read later by their parent, dependent
            book.gate.set()
            assert (await rt.wait(parent.id)).result == [0, 10]
            assert (await rt.wait(after.id)).status is S.COMPLETED
            await rt.prune(everything)
            assert await rt.count() == 0
