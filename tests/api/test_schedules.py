from __future__ import annotations

import pytest

from tests.api.conftest import Harness

pytestmark = pytest.mark.trio


async def test_schedule_lifecycle_over_http(harness: Harness) -> None:
    status, schedule = await harness.body(
        "POST",
        "/api/v1/schedules",
        json={"job_type": "echo", "params": {"value": 1}, "every": "1 hour", "name": "hourly"},
    )
    assert status == 201, schedule
    assert (schedule["name"], schedule["trigger"]["kind"]) == ("hourly", "interval")
    path = f"/api/v1/schedules/{schedule['id']}"
    status, found = await harness.body("GET", "/api/v1/schedules/hourly")
    assert (status, found["id"]) == (200, schedule["id"])
    status, paused = await harness.body("POST", path + "/pause")
    assert (status, paused["paused"]) == (200, True)
    status, resumed = await harness.body("PATCH", path, json={"paused": False})
    assert (status, resumed["paused"]) == (200, False)
    status, job = await harness.body("POST", path + "/trigger")
    assert (status, job["schedule_id"], job["type"]) == (201, schedule["id"], "echo")
    _, page = await harness.body("GET", "/api/v1/jobs", query={"schedule_id": schedule["id"]})
    assert [j["id"] for j in page["jobs"]] == [job["id"]]
    _, listed = await harness.body("GET", "/api/v1/schedules")
    assert [s["name"] for s in listed["schedules"]] == ["hourly"]
    assert (await harness.call("DELETE", path)).status_code == 204
    assert (await harness.call("GET", path)).status_code == 404


async def test_an_operator_manages_its_own_tenants_schedules_and_an_admin_sees_all(
    harness: Harness,
) -> None:
    body = {"job_type": "echo", "cron": "0 9 * * mon-fri", "tz": "Europe/Paris", "name": "am"}
    status, _ = await harness.body("POST", "/api/v1/schedules", who="acme-viewer", json=body)
    assert status == 403
    status, mine = await harness.body("POST", "/api/v1/schedules", who="acme", json=body)
    assert status == 201 and (mine["tenant_id"], mine["user_id"]) == ("acme", "acme-ops")
    status, theirs = await harness.body("POST", "/api/v1/schedules", who="globex", json=body)
    assert status == 201 and theirs["tenant_id"] == "globex"
    _, page = await harness.body("GET", "/api/v1/schedules", who="acme-viewer")
    assert [s["id"] for s in page["schedules"]] == [mine["id"]]
    _, page = await harness.body("GET", "/api/v1/schedules")
    assert {s["id"] for s in page["schedules"]} == {mine["id"], theirs["id"]}
    path = f"/api/v1/schedules/{theirs['id']}"
    for method, suffix in [("GET", ""), ("POST", "/pause"), ("POST", "/trigger"), ("DELETE", "")]:
        status, _ = await harness.body(method, path + suffix, who="acme")
        assert status == 404, (method, suffix)
    status, paused = await harness.body("POST", "/api/v1/schedules/am/pause", who="acme")
    assert (status, paused["id"], paused["paused"]) == (200, mine["id"], True)
    status, job = await harness.body("POST", f"/api/v1/schedules/{mine['id']}/trigger", who="acme")
    assert status == 201 and (job["tenant_id"], job["user_id"]) == ("acme", "acme-ops")
    assert (await harness.call("DELETE", "/api/v1/schedules/am", who="acme")).status_code == 204
    assert (await harness.rt.get_schedule(theirs["id"])).paused is False


async def test_a_schedules_jobs_go_to_its_queue_and_carry_its_user(harness: Harness) -> None:
    body = {"job_type": "echo", "every": "1 hour", "queue": "reports", "name": "r"}
    status, schedule = await harness.body("POST", "/api/v1/schedules", who="acme", json=body)
    assert status == 201 and schedule["queue"] == "reports"
    _, job = await harness.body("POST", f"/api/v1/schedules/{schedule['id']}/trigger", who="acme")
    assert (job["queue"], job["user_id"], job["tenant_id"]) == ("reports", "acme-ops", "acme")
    status, body = await harness.body(
        "POST", "/api/v1/schedules", who="acme", json={**body, "queue": ""}
    )
    assert status == 422


async def test_an_admin_naming_a_schedule_two_tenants_share_gets_409_and_nothing_changes(
    harness: Harness,
) -> None:
    rt = harness.rt
    mine = await rt.add_schedule("echo", every="1 hour", name="nightly", tenant_id="acme")
    theirs = await rt.add_schedule("echo", every="1 hour", name="nightly", tenant_id="globex")
    for method, suffix in [("GET", ""), ("DELETE", ""), ("POST", "/pause"), ("POST", "/trigger")]:
        status, body = await harness.body(method, f"/api/v1/schedules/nightly{suffix}")
        assert (status, body["error"]) == (409, "ambiguous_name"), (method, suffix, body)
        assert "use its id" in body["message"]
    status, body = await harness.body("PATCH", "/api/v1/schedules/nightly", json={"paused": True})
    assert status == 409, body
    left = await rt.schedules()
    assert {s.id for s in left} == {mine.id, theirs.id} and not any(s.paused for s in left)
    assert await rt.list(type="echo") == []  # no job was triggered
    status, found = await harness.body("GET", "/api/v1/schedules/nightly", who="acme-viewer")
    assert (status, found["id"]) == (200, mine.id)  # within a tenant the name is unique
    assert (await harness.call("DELETE", f"/api/v1/schedules/{theirs.id}")).status_code == 204


async def test_bad_schedules_are_422_naming_the_problem(harness: Harness) -> None:
    for body, words in [
        ({"job_type": "echo"}, "every"),
        ({"job_type": "echo", "cron": "61 * * * *"}, "cron"),
        ({"job_type": "echo", "every": "1 hour", "tz": "Mars/Olympus"}, "Mars/Olympus"),
        ({"job_type": "nope", "every": "1 hour"}, "nope"),
        ({"job_type": "numbers", "every": "1 hour", "params": {"count": -1}}, "count"),
    ]:
        status, answer = await harness.body("POST", "/api/v1/schedules", json=body)
        assert status == 422, (body, answer)
        assert words in answer["message"], (body, answer)


@pytest.mark.parametrize(
    "when",
    [
        # Near the ends of datetime's range, converting to UTC overflows.
        {"every": "1 hour", "start": "0001-01-01T00:00:00+01:00"},
        {"every": "1 hour", "end": "9999-12-31T23:00:00-05:00"},
        {"cron": "0 * * * *", "end": "9999-12-31T23:59:59Z"},
        {"at": "0001-01-01T00:00:00+01:00"},
        {"at": "9999-12-31T23:00:00-05:00"},
    ],
)
async def test_schedule_times_near_year_1_or_9999_are_invalid_not_500(
    harness: Harness, when: dict[str, str]
) -> None:
    body = {"job_type": "echo", **when}
    status, answer = await harness.body("POST", "/api/v1/schedules", json=body)
    assert (status, answer["error"]) == (422, "invalid_schedule"), answer
    field = "at" if "at" in when else "start" if "start" in when else "end"
    assert field in answer["message"], answer
