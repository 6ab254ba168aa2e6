"""SSE streams read their own bounded channel of the event log: one that falls
behind is closed with a reason, and replays the rest when it reconnects; one of
another tenant is never woken."""

from __future__ import annotations

import pytest
import trio

from runtime.api import ApiConfig, app_state
from tests.api.conftest import TOKEN_ENTRIES, Harness
from tests.api.sse import Frame, open_stream

pytestmark = pytest.mark.trio


@pytest.fixture
def api_config() -> ApiConfig:
    # A stream may lag as far as the log holds: 3 events here.
    return ApiConfig(tokens=TOKEN_ENTRIES, sse_keepalive=5.0, sse_poll=5.0, event_buffer=3)


async def read_to_end(stream: object) -> list[Frame]:
    frames: list[Frame] = []
    try:
        while True:
            frames.append(await stream.next())  # type: ignore[attr-defined]
    except trio.EndOfChannel:
        return frames


async def test_a_stream_that_falls_behind_is_closed_with_a_reason(harness: Harness) -> None:
    await harness.rt.pause_queue("default")
    with trio.fail_after(10):
        async with open_stream(harness, "/api/v1/events") as stream:
            await stream.ready()
            # Four status changes at once, before the stream can read one.
            await harness.rt.enqueue_many("echo", [{"value": i} for i in range(4)])
            frames = await read_to_end(stream)
    assert [f.event for f in frames] == ["status", "status", "status", "reset"]
    assert "subscriber too slow" in frames[-1].data["reason"]
    # The reset names the last event it sent: a reconnect replays the fourth.
    assert frames[-1].id == frames[2].id
    with trio.fail_after(10):
        async with open_stream(harness, "/api/v1/events", last_event_id=frames[2].id) as stream:
            replayed = await stream.next()
    assert replayed.event == "status" and replayed.data["job_id"] not in {
        f.data["job_id"] for f in frames[:3]
    }


async def test_an_idle_stream_of_another_tenant_is_not_offered_the_events(
    harness: Harness,
) -> None:
    await harness.rt.pause_queue("default")
    streams = app_state(harness.app).events._streams
    with trio.fail_after(10):
        async with open_stream(harness, "/api/v1/events", who="globex") as stream:
            await stream.ready()
            (sub,) = streams._by_tenant["globex"]
            offered: list[object] = []
            sub.accept = offered.append  # type: ignore[assignment,method-assign]
            await harness.body("POST", "/api/v1/jobs", who="acme", json={"type": "echo"})
            await trio.testing.wait_all_tasks_blocked()
    assert offered == []
