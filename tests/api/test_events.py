from __future__ import annotations

from typing import Any

import pytest
import trio

from runtime.api import app_state
from tests.api.conftest import Harness
from tests.api.sse import open_stream

pytestmark = pytest.mark.trio


def job_ids(frames: list[str | None]) -> list[tuple[int, int]]:
    out = []
    for text in frames:
        assert text is not None
        rev, _, seq = text.partition(".")
        out.append((int(rev), int(seq)))
    return out


async def held_job(h: Harness, gate: str) -> dict[str, Any]:
    """A gate job that waits in its paused queue until the test resumes the queue."""
    await h.body("POST", "/api/v1/queues/default/pause")
    _, job = await h.body("POST", "/api/v1/jobs", json={"type": "gate", "params": {"name": gate}})
    return job  # type: ignore[no-any-return]


async def test_job_stream_sends_a_snapshot_its_events_and_ends_with_the_job(
    harness: Harness,
) -> None:
    job = await held_job(harness, "s")
    with trio.fail_after(10):
        async with open_stream(harness, f"/api/v1/jobs/{job['id']}/events") as stream:
            first = await stream.next()
            assert first.event == "snapshot" and first.data["id"] == job["id"]
            assert first.data["status"] == "waiting"
            await harness.body("POST", "/api/v1/queues/default/resume")
            frames = [first, *await stream.until("check_in", message="waiting at s")]
            assert any(f.event == "progress" and f.data["progress"] == 50.0 for f in frames)
            harness.gates.open("s")
            frames += await stream.until("status", status="completed")
            with pytest.raises(trio.EndOfChannel):
                await stream.next()  # the stream ends with the job
    ids = job_ids([f.id for f in frames])
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_job_stream_resumes_after_last_event_id_with_a_fresh_snapshot(
    harness: Harness,
) -> None:
    job = await held_job(harness, "r")
    path = f"/api/v1/jobs/{job['id']}/events"
    with trio.fail_after(10):
        async with open_stream(harness, path) as stream:
            await stream.next()
            await harness.body("POST", "/api/v1/queues/default/resume")
            frames = await stream.until("check_in")
        last = frames[-1].id
        assert last is not None
        async with open_stream(harness, path, last_event_id=last) as stream:
            again = await stream.next()
            assert again.event == "snapshot" and again.data["check_in"] == "waiting at r"
            assert job_ids([again.id]) > job_ids([last])
            harness.gates.open("r")
            await stream.until("status", status="completed")


async def test_job_stream_of_a_finished_job_is_just_its_snapshot(harness: Harness) -> None:
    _, job = await harness.body("POST", "/api/v1/jobs", json={"type": "echo"})
    await harness.body("GET", f"/api/v1/jobs/{job['id']}/wait", query={"timeout": 10})
    with trio.fail_after(10):
        async with open_stream(harness, f"/api/v1/jobs/{job['id']}/events") as stream:
            snapshot = await stream.next()
            assert snapshot.data["status"] == "completed"
            with pytest.raises(trio.EndOfChannel):
                await stream.next()


async def test_global_stream_shows_a_tenant_only_its_own_jobs_matching_the_filters(
    harness: Harness,
) -> None:
    with trio.fail_after(10):
        async with open_stream(
            harness, "/api/v1/events", who="acme-viewer", query={"type": "echo"}
        ) as stream:
            await stream.ready()
            await harness.body("POST", "/api/v1/jobs", who="globex", json={"type": "echo"})
            await harness.body(
                "POST", "/api/v1/jobs", who="acme", json={"type": "numbers", "params": {"count": 1}}
            )
            _, ours = await harness.body("POST", "/api/v1/jobs", who="acme", json={"type": "echo"})
            frames = await stream.until("status", status="completed")
    assert {f.data["job_id"] for f in frames} == {ours["id"]}
    assert [f.data["status"] for f in frames] == ["waiting", "running", "completed"]


async def test_global_stream_replays_what_a_dropped_client_missed(harness: Harness) -> None:
    with trio.fail_after(10):
        async with open_stream(harness, "/api/v1/events", query={"status": "scheduled"}) as stream:
            await stream.ready()
            await harness.body("POST", "/api/v1/jobs", json={"type": "echo", "delay": 60})
            seen = await stream.next()
        missed = []
        for i in range(3):  # while the client is away
            _, job = await harness.body(
                "POST", "/api/v1/jobs", json={"type": "echo", "delay": 60, "params": {"value": i}}
            )
            missed.append(job["id"])
        async with open_stream(
            harness, "/api/v1/events", last_event_id=seen.id, query={"status": "scheduled"}
        ) as stream:
            replayed = [await stream.next() for _ in missed]
    assert [f.data["job_id"] for f in replayed] == missed
    numbers = [int(str(f.id).rpartition("-")[2]) for f in [seen, *replayed]]
    assert numbers == sorted(numbers)


async def test_global_stream_with_an_unknown_position_says_reset(harness: Harness) -> None:
    with trio.fail_after(10):
        async with open_stream(harness, "/api/v1/events", last_event_id="0123abcd-5") as stream:
            frame = await stream.next()
    assert frame.event == "reset" and "no longer buffered" in frame.data["reason"]
    log = app_state(harness.app).events
    assert frame.id == log.format_id(log.last_seq)
