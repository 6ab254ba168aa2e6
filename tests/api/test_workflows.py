"""Child jobs and chords over HTTP: a job shows its parent and children,
``?parent_id=`` lists the children, ``POST /chords`` stores a chord."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from pydantic import BaseModel

from runtime import JobContext, Registry
from tests.api.conftest import Harness
from tests.api.jobs import Gates, register
from tests.api.sse import open_stream

pytestmark = pytest.mark.trio


class Count(BaseModel):
    n: int = 3


@pytest.fixture
def api_registry(registry: Registry, gates: Gates) -> Registry:
    register(registry, gates)

    @registry.job(name="spawner", max_retries=0)
    async def spawner(ctx: JobContext, params: Count) -> list[Any]:
        await ctx.spawn_many("echo", [{"value": i} for i in range(params.n)])
        return [r.result for r in await ctx.wait_children()]

    @registry.job(name="sum", max_retries=0)
    async def total(ctx: JobContext, params: Count) -> int:
        return sum([r.result async for r in ctx.iter_dependency_results(page=2)])

    return registry


async def test_a_job_shows_its_parent_and_children_and_the_list_filters_by_parent(
    harness: Harness,
) -> None:
    status, parent = await harness.body(
        "POST", "/api/v1/jobs", who="acme", json={"type": "spawner", "params": {"n": 3}}
    )
    assert status == 201
    done = await harness.rt.wait(parent["id"], timeout=30)
    assert done.result == [0, 1, 2]
    status, read = await harness.body("GET", f"/api/v1/jobs/{parent['id']}", who="acme")
    assert status == 200
    assert read["parent_id"] is None
    assert read["children_count"] == 3
    assert [c["status"] for c in read["children"]] == ["completed"] * 3
    status, page = await harness.body("GET", f"/api/v1/jobs?parent_id={parent['id']}", who="acme")
    assert (status, page["total"]) == (200, 3)
    assert {j["id"] for j in page["jobs"]} == {c["id"] for c in read["children"]}
    child = read["children"][0]["id"]
    status, one = await harness.body("GET", f"/api/v1/jobs/{child}", who="acme")
    assert one["parent_id"] == parent["id"]
    # Another tenant sees neither the parent nor its children.
    status, theirs = await harness.body(
        "GET", f"/api/v1/jobs?parent_id={parent['id']}", who="globex"
    )
    assert theirs["total"] == 0


async def test_post_chords_stores_members_and_a_blocked_callback(harness: Harness) -> None:
    status, chord = await harness.body(
        "POST",
        "/api/v1/chords",
        who="acme",
        json={
            "type": "numbers",
            "params": [{"count": i} for i in range(5)],
            "callback": {"type": "sum"},
        },
    )
    assert status == 201, chord
    assert chord["callback"]["status"] == "blocked"
    assert chord["callback"]["tenant_id"] == "acme"
    assert len(chord["members"]) == 5
    done = await harness.rt.wait(chord["callback"]["id"], timeout=30)
    assert done.result == 0 + 1 + 2 + 3 + 4
    status, read = await harness.body("GET", f"/api/v1/jobs/{chord['callback']['id']}", who="acme")
    assert sorted(read["depends_on"]) == sorted(chord["members"])


async def test_post_chords_refuses_bad_members_and_stores_nothing(harness: Harness) -> None:
    before = await harness.rt.count()
    status, body = await harness.body(
        "POST",
        "/api/v1/chords",
        who="acme",
        json={
            "type": "numbers",
            "params": [{"count": 1}, {"count": -1}],
            "callback": {"type": "sum"},
        },
    )
    assert (status, body["error"]) == (422, "invalid_params")
    status, body = await harness.body(
        "POST",
        "/api/v1/chords",
        who="acme",
        json={"type": "numbers", "params": [], "callback": {"type": "sum"}},
    )
    assert status == 422
    status, body = await harness.body(
        "POST",
        "/api/v1/chords",
        who="acme",
        json={"type": "numbers", "params": [{"count": 1}], "callback": {"type": "nope"}},
    )
    assert (status, body["error"]) == (422, "unknown_job_type")
    assert await harness.rt.count() == before


async def test_the_global_stream_follows_a_parents_children(harness: Harness) -> None:
    with trio.fail_after(20):
        await harness.body("POST", "/api/v1/queues/default/pause", who="admin")
        _, parent = await harness.body(
            "POST", "/api/v1/jobs", who="acme", json={"type": "spawner", "params": {"n": 2}}
        )
        # The children do not exist yet: the stream is filtered by their parent.
        async with open_stream(
            harness, "/api/v1/events", who="acme", query={"parent_id": parent["id"]}
        ) as stream:
            await stream.ready()
            await harness.body("POST", "/api/v1/queues/default/resume", who="admin")
            done: set[str] = set()
            while len(done) < 2:
                frame = await stream.next()
                assert frame.data["parent_id"] == parent["id"]
                if frame.event == "status" and frame.data["status"] == "completed":
                    done.add(frame.data["job_id"])
        assert (await harness.rt.wait(parent["id"], timeout=10)).result == [0, 1]


async def test_a_parents_stream_shows_its_children_and_ends_with_the_parent(
    harness: Harness,
) -> None:
    with trio.fail_after(20):
        await harness.body("POST", "/api/v1/queues/default/pause", who="admin")
        _, parent = await harness.body(
            "POST", "/api/v1/jobs", who="acme", json={"type": "spawner", "params": {"n": 2}}
        )
        path = f"/api/v1/jobs/{parent['id']}/events"
        async with open_stream(harness, path, who="acme") as stream:
            first = await stream.next()
            assert first.event == "snapshot"
            await harness.body("POST", "/api/v1/queues/default/resume", who="admin")
            frames = await stream.until("status", status="completed")
            with pytest.raises(trio.EndOfChannel):
                await stream.next()  # ended by the parent's end, not a child's
    child = [f.data for f in frames if f.event == "child"]
    assert {c["job_id"] for c in child} == {parent["id"]}
    ends = [c["child_id"] for c in child if c["child_status"] == "completed"]
    assert len(set(ends)) == 2
    assert {c["child_id"] for c in child if c["child_status"] == "running"} == set(ends)
    assert frames[-1].data["job_id"] == parent["id"]
    # Resume ids only go up, children's frames included.
    ids = [tuple(int(p) for p in f.id.split(".")) for f in [first, *frames] if f.id]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
