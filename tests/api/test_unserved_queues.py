"""GET /api/v1/queues warns of a queue whose jobs no live worker serves."""

from __future__ import annotations

import pytest

from tests.api.conftest import Harness

pytestmark = pytest.mark.trio


async def test_a_queue_no_live_worker_serves_carries_a_warning(harness: Harness) -> None:
    status, _ = await harness.body("PATCH", "/api/v1/queues/default", json={"capacity": 0})
    assert status == 200
    await harness.rt._tick()  # the heartbeat says which queues this worker serves
    await harness.body("POST", "/api/v1/jobs", json={"type": "echo", "params": {"value": 1}})
    _, body = await harness.body("GET", "/api/v1/queues")
    default = next(q for q in body["queues"] if q["name"] == "default")
    assert default["warning"] == (
        "1 jobs wait and no live worker serves this queue: "
        "start one that does (callboard worker --queues default)"
    )
    _, body = await harness.body("GET", "/api/v1/queues", who="acme-viewer")
    default = next(q for q in body["queues"] if q["name"] == "default")
    assert default["warning"].startswith("jobs wait and no live worker serves this queue")
    await harness.body("PATCH", "/api/v1/queues/default", json={"capacity": 2})
    await harness.rt._tick()
    _, body = await harness.body("GET", "/api/v1/queues/default")
    assert body["warning"] is None
