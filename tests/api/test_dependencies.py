"""``depends_on`` over HTTP: enqueue with it, read it back, 404 for what a
caller may not depend on."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import Harness

pytestmark = pytest.mark.trio


async def test_enqueue_with_depends_on_blocks_and_get_shows_the_dependencies(
    harness: Harness,
) -> None:
    status, first = await harness.body("POST", "/api/v1/jobs", who="acme", json={"type": "gate"})
    assert status == 201
    status, job = await harness.body(
        "POST",
        "/api/v1/jobs",
        who="acme",
        json={"type": "echo", "depends_on": [first["id"]], "run_on_failure": True},
    )
    assert (status, job["status"]) == (201, "blocked")
    status, read = await harness.body("GET", f"/api/v1/jobs/{job['id']}", who="acme")
    assert (status, read["depends_on"], read["status"]) == (200, [first["id"]], "blocked")
    status, plain = await harness.body("GET", f"/api/v1/jobs/{first['id']}", who="acme")
    assert plain["depends_on"] == []
    harness.gates.open()
    await harness.rt.wait(job["id"], timeout=30)
    status, done = await harness.body("GET", f"/api/v1/jobs/{job['id']}", who="acme")
    assert done["status"] == "completed"


async def test_unknown_or_other_tenants_dependencies_are_404_and_store_nothing(
    harness: Harness,
) -> None:
    _, theirs = await harness.body("POST", "/api/v1/jobs", who="globex", json={"type": "echo"})
    before = await harness.rt.count()
    for ids in ([theirs["id"]], [str(uuid.uuid4())]):
        status, body = await harness.body(
            "POST", "/api/v1/jobs", who="acme", json={"type": "echo", "depends_on": ids}
        )
        assert (status, body["error"]) == (404, "not_found")
    status, body = await harness.body(
        "POST", "/api/v1/jobs", who="acme", json={"type": "echo", "depends_on": []}
    )
    assert status == 422
    assert await harness.rt.count() == before
