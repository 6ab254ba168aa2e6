from __future__ import annotations

import pytest

from tests.api.conftest import Harness

pytestmark = pytest.mark.trio


async def test_job_types_list_their_defaults_and_params_schema(harness: Harness) -> None:
    status, body = await harness.body("GET", "/api/v1/job-types", who="acme-viewer")
    assert status == 200
    names = [t["name"] for t in body["types"]]
    assert names == sorted(names) and {"echo", "gate", "numbers"} <= set(names)
    status, numbers = await harness.body("GET", "/api/v1/job-types/numbers")
    assert status == 200 and numbers["queue"] == "default"
    assert numbers["params_schema"]["properties"]["count"]["maximum"] == 100
    assert numbers["params_schema"]["required"] == ["count"]
    status, body = await harness.body("GET", "/api/v1/job-types/nope")
    assert (status, body["message"]) == (404, "no job type 'nope'")


async def test_job_groups_name_their_types(harness: Harness) -> None:
    _, body = await harness.body("GET", "/api/v1/job-groups")
    default = next(g for g in body["groups"] if g["name"] == "default")
    assert {"echo", "gate"} <= set(default["types"])
    status, group = await harness.body("GET", "/api/v1/job-groups/default")
    assert status == 200 and group["types"] == default["types"]
    assert (await harness.call("GET", "/api/v1/job-groups/nope")).status_code == 404


async def test_queues_show_counts_to_admins_only(harness: Harness) -> None:
    await harness.body("POST", "/api/v1/jobs", json={"type": "echo", "delay": 60})
    _, body = await harness.body("GET", "/api/v1/queues")
    default = next(q for q in body["queues"] if q["name"] == "default")
    assert (default["scheduled"], default["paused"]) == (1, False)
    _, body = await harness.body("GET", "/api/v1/queues", who="acme-viewer")
    default = next(q for q in body["queues"] if q["name"] == "default")
    assert default["scheduled"] is None and default["capacity"] > 0


async def test_a_tenant_sees_served_queues_and_its_own_not_another_tenants(
    harness: Harness,
) -> None:
    for who, queue in (("globex", "globex-merger-project"), ("acme", "acme-reports")):
        body = {"type": "echo", "delay": 3600, "queue": queue}
        status, _ = await harness.body("POST", "/api/v1/jobs", who=who, json=body)
        assert status == 201
    _, body = await harness.body("GET", "/api/v1/queues", who="acme-viewer")
    names = {q["name"] for q in body["queues"]}
    assert "default" in names and "acme-reports" in names
    assert "globex-merger-project" not in names
    status, _ = await harness.body("GET", "/api/v1/queues/globex-merger-project", who="acme")
    assert status == 404
    status, _ = await harness.body("GET", "/api/v1/queues/acme-reports", who="acme-viewer")
    assert status == 200
    _, body = await harness.body("GET", "/api/v1/queues")  # admins see every tenant's
    names = {q["name"] for q in body["queues"]}
    assert {"globex-merger-project", "acme-reports"} <= names
    assert (await harness.rt.statistics(tenant_id="acme"))["acme-reports"].scheduled == 1


async def test_pause_resume_and_resize_a_queue(harness: Harness) -> None:
    status, queue = await harness.body("POST", "/api/v1/queues/default/pause")
    assert (status, queue["paused"]) == (200, True)
    _, job = await harness.body("POST", "/api/v1/jobs", json={"type": "echo"})
    status, waiting = await harness.body(
        "GET", f"/api/v1/jobs/{job['id']}/wait", query={"timeout": 0}
    )
    assert (status, waiting["status"]) == (202, "waiting")
    status, queue = await harness.body("PATCH", "/api/v1/queues/default", json={"capacity": 2})
    assert (status, queue["capacity"]) == (200, 2)
    status, queue = await harness.body("POST", "/api/v1/queues/default/resume")
    assert (status, queue["paused"]) == (200, False)
    status, done = await harness.body(
        "GET", f"/api/v1/jobs/{job['id']}/wait", query={"timeout": 10}
    )
    assert (status, done["status"]) == (200, "completed")
    status, body = await harness.body("POST", "/api/v1/queues/nope/pause")
    assert status == 404 and "unknown queue 'nope'" in body["message"]
