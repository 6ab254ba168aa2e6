from __future__ import annotations

import pytest

from tests.api.conftest import Harness

pytestmark = pytest.mark.trio


async def enqueue(h: Harness, who: str = "admin", **body: object) -> dict[str, object]:
    status, job = await h.body("POST", "/api/v1/jobs", who=who, json=body)
    assert status == 201, job
    return job  # type: ignore[no-any-return]


async def test_enqueue_answers_201_with_the_stored_job_and_its_location(harness: Harness) -> None:
    response = await harness.call(
        "POST", "/api/v1/jobs", json={"type": "echo", "params": {"value": [1, 2]}, "priority": 5}
    )
    job = await response.get_json()
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["type"], job["params"], job["priority"]) == ("echo", {"value": [1, 2]}, 5)
    assert job["user_id"] == "root" and job["revision"] == 1


async def test_enqueue_with_a_known_idempotency_key_answers_200_with_the_first_job(
    harness: Harness,
) -> None:
    first = await enqueue(harness, type="echo", idempotency_key="k1")
    status, again = await harness.body(
        "POST", "/api/v1/jobs", json={"type": "echo", "idempotency_key": "k1"}
    )
    assert (status, again["id"]) == (200, first["id"])
    # Keys are per tenant: another tenant's equal key is a new job.
    other = await enqueue(harness, who="acme", type="echo", idempotency_key="k1")
    assert other["id"] != first["id"] and other["tenant_id"] == "acme"


async def test_enqueue_rejects_bad_params_field_by_field(harness: Harness) -> None:
    status, body = await harness.body(
        "POST", "/api/v1/jobs", json={"type": "numbers", "params": {"count": "many", "label": 3}}
    )
    assert status == 422
    assert body["error"] == "invalid_params"
    assert {tuple(e["loc"]) for e in body["details"]} == {("count",), ("label",)}


async def test_enqueue_unknown_type_is_422_naming_the_known_types(harness: Harness) -> None:
    status, body = await harness.body("POST", "/api/v1/jobs", json={"type": "nope"})
    assert (status, body["error"]) == (422, "unknown_job_type")
    assert "'nope'" in body["message"] and "echo" in body["message"]


async def test_enqueue_delay_schedules_and_delay_with_at_is_refused(harness: Harness) -> None:
    job = await enqueue(harness, type="echo", delay=3600)
    assert job["status"] == "scheduled"
    status, body = await harness.body(
        "POST",
        "/api/v1/jobs",
        json={"type": "echo", "delay": 1, "at": "2030-01-01T00:00:00Z"},
    )
    assert status == 422 and "not both" in body["message"]


async def test_list_filters_pages_and_counts(harness: Harness) -> None:
    for i in range(5):
        await enqueue(harness, type="echo", params={"value": i}, delay=3600)
    await enqueue(harness, type="numbers", params={"count": 1}, delay=3600, idempotency_key="n")
    status, page = await harness.body(
        "GET", "/api/v1/jobs", query={"type": "echo", "page_size": 2, "page": 2}
    )
    assert status == 200
    assert (page["page"], page["page_size"], page["total"]) == (2, 2, 5)
    assert [j["params"]["value"] for j in page["jobs"]] == [2, 1]  # newest first
    _, keyed = await harness.body("GET", "/api/v1/jobs", query={"idempotency_key": "n"})
    assert [j["type"] for j in keyed["jobs"]] == ["numbers"]
    _, statuses = await harness.body(
        "GET", "/api/v1/jobs", query={"status": "scheduled,waiting", "queue": "default"}
    )
    assert statuses["total"] == 6


async def test_list_refuses_unknown_status_and_oversized_pages(harness: Harness) -> None:
    status, body = await harness.body("GET", "/api/v1/jobs", query={"status": "running,bogus"})
    assert status == 422 and "bogus" in body["message"]
    status, body = await harness.body("GET", "/api/v1/jobs", query={"page_size": 100_000})
    assert status == 422 and body["details"][0]["loc"] == ["query", "page_size"]


async def test_wait_answers_200_when_finished_and_202_with_the_state_on_timeout(
    harness: Harness,
) -> None:
    done = await enqueue(harness, type="echo", params={"value": "hi"})
    status, job = await harness.body(
        "GET", f"/api/v1/jobs/{done['id']}/wait", query={"timeout": 10}
    )
    assert (status, job["status"], job["result"]) == (200, "completed", "hi")
    later = await enqueue(harness, type="echo", delay=3600)
    status, job = await harness.body(
        "GET", f"/api/v1/jobs/{later['id']}/wait", query={"timeout": 0}
    )
    assert (status, job["status"]) == (202, "scheduled")


async def test_cancel_suspend_resume_retry_and_delete(harness: Harness) -> None:
    job = await enqueue(harness, type="echo", delay=3600)
    path = f"/api/v1/jobs/{job['id']}"
    status, body = await harness.body("DELETE", path)
    assert (status, body["error"]) == (409, "illegal_transition")
    assert "'scheduled'" in body["message"] and body["details"]["current"] == "scheduled"
    status, body = await harness.body("POST", path + "/suspend")
    assert (status, body["status"]) == (200, "suspended")
    status, body = await harness.body("POST", path + "/cancel")
    assert (status, body["status"]) == (200, "canceled")
    status, body = await harness.body("POST", path + "/cancel")
    assert status == 409 and "'canceled'" in body["message"]
    status, body = await harness.body("POST", path + "/retry")
    assert (status, body["status"]) == (200, "waiting")
    await harness.body("GET", path + "/wait", query={"timeout": 10})
    response = await harness.call("DELETE", path)
    assert response.status_code == 204 and await response.get_data() == b""
    status, body = await harness.body("GET", path)
    assert (status, body["error"]) == (404, "not_found")


async def test_resume_moves_a_suspended_job_back_to_waiting(harness: Harness) -> None:
    job = await enqueue(harness, type="echo", delay=3600)
    path = f"/api/v1/jobs/{job['id']}"
    await harness.body("POST", path + "/suspend")
    status, body = await harness.body("POST", path + "/resume")
    assert (status, body["status"]) == (200, "waiting")
    status, body = await harness.body("POST", path + "/resume")
    assert status == 409


async def test_cancel_running_job_answers_canceling_then_it_ends_canceled(
    harness: Harness,
) -> None:
    job = await enqueue(harness, type="gate", params={"name": "c"})
    await harness.gates.wait_reached("c")
    status, body = await harness.body("POST", f"/api/v1/jobs/{job['id']}/cancel")
    assert (status, body["status"]) == (200, "canceling")
    _, done = await harness.body("GET", f"/api/v1/jobs/{job['id']}/wait", query={"timeout": 10})
    assert done["status"] == "canceled"


async def test_logs_tell_the_jobs_story_and_filter_by_level(harness: Harness) -> None:
    job = await enqueue(harness, type="boom", params={"value": "x"})
    await harness.body("GET", f"/api/v1/jobs/{job['id']}/wait", query={"timeout": 10})
    status, log = await harness.body("GET", f"/api/v1/jobs/{job['id']}/logs")
    assert status == 200 and log["job_id"] == job["id"]
    assert any("failed" in r["message"] for r in log["records"])
    status, body = await harness.body(
        "GET", f"/api/v1/jobs/{job['id']}/logs", query={"level": "LOUD"}
    )
    assert status == 422 and "LOUD" in body["message"]


async def test_cancel_with_a_reason_keeps_it_on_the_job_its_log_and_its_events(
    harness: Harness,
) -> None:
    job = await enqueue(harness, type="gate", params={"name": "r"})
    await harness.gates.wait_reached("r")
    events = harness.rt.subscribe(job["id"])
    path = f"/api/v1/jobs/{job['id']}"
    status, body = await harness.body("POST", path + "/cancel", json={"reason": "disk full"})
    assert (status, body["status"], body["cancel_reason"]) == (200, "canceling", "disk full")
    _, done = await harness.body("GET", path + "/wait", query={"timeout": 10})
    assert (done["status"], done["cancel_reason"]) == ("canceled", "disk full")
    events.close()
    told = [
        (e.status.value, e.message, e.cancel_reason) async for e in events if e.kind == "status"
    ]
    assert ("canceling", "disk full", "disk full") in told
    assert told[-1] == ("canceled", "disk full", "disk full")
    _, log = await harness.body("GET", path + "/logs")
    cancel = [r for r in log["records"] if r["message"].startswith("cancel:")]
    assert cancel[0]["message"] == "cancel: running -> canceling (disk full)"
    assert cancel[0]["extra"]["reason"] == "disk full"


async def test_control_bodies_refuse_unknown_fields_and_accept_none(harness: Harness) -> None:
    job = await enqueue(harness, type="echo", delay=3600)
    path = f"/api/v1/jobs/{job['id']}"
    status, body = await harness.body("POST", path + "/cancel", json={"why": "x"})
    assert status == 422 and "why" in body["message"]
    status, body = await harness.body("POST", path + "/suspend", json={"reason": "x"})
    assert status == 422 and "reason" in body["message"]
    status, body = await harness.body("POST", path + "/cancel", json={"reason": "x" * 2001})
    assert status == 422
    status, body = await harness.body("POST", path + "/cancel", json={"reason": "a\u0000b"})
    assert status == 422  # the body check or the store check, never a 500
    status, body = await harness.body("GET", path)
    assert body["status"] == "scheduled"  # nothing changed
    status, body = await harness.body("POST", path + "/cancel", json={})
    assert (status, body["status"], body["cancel_reason"]) == (200, "canceled", None)


async def test_enqueue_takes_a_description_and_a_retry_delay(harness: Harness) -> None:
    job = await enqueue(
        harness, type="echo", delay=3600, description="nightly export", retry_delay=7.5
    )
    assert (job["description"], job["retry_delay"]) == ("nightly export", 7.5)
    status, body = await harness.body(
        "POST", "/api/v1/jobs", json={"type": "echo", "retry_delay": -1}
    )
    assert status == 422 and "retry_delay" in body["message"]


async def test_status_filters_take_atlasos_names_as_aliases(harness: Harness) -> None:
    later = await enqueue(harness, type="echo", delay=3600)
    gone = await enqueue(harness, type="echo", delay=3600)
    await harness.body("POST", f"/api/v1/jobs/{gone['id']}/cancel")
    _, page = await harness.body("GET", "/api/v1/jobs", query={"status": "pending"})
    assert [j["id"] for j in page["jobs"]] == [later["id"]]
    _, page = await harness.body("GET", "/api/v1/jobs", query={"status": "cancelled"})
    assert [j["id"] for j in page["jobs"]] == [gone["id"]]
    _, page = await harness.body("GET", "/api/v1/jobs", query={"status": "pending,cancelled"})
    assert page["total"] == 2
    status, body = await harness.body("GET", "/api/v1/jobs", query={"status": "done"})
    assert status == 422
    assert "unknown status 'done'; known: scheduled, waiting, locked" in body["message"]
    assert (
        "aliases: pending (scheduled/waiting/locked/blocked), cancelled (canceled)"
        in body["message"]
    )
    status, body = await harness.body("GET", "/api/v1/events", query={"status": "done"})
    assert status == 422 and "cancelled (canceled)" in body["message"]
