"""Multi-step jobs over HTTP: ``POST /api/v1/jobs`` with ``steps`` and
``step_defaults``, read back with each step's record."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from runtime import Registry, Runtime, Step
from runtime.api.hooks import Hooks, HookSettings
from tests.api.conftest import Harness
from tests.api.hook_receiver import LOOPBACK, SECRET, receiving, running
from tests.api.jobs import Gates, register
from tests.api.sse import open_stream

pytestmark = pytest.mark.trio


async def test_post_steps_creates_a_multi_step_job_and_get_shows_its_steps(
    harness: Harness,
) -> None:
    status, job = await harness.body(
        "POST",
        "/api/v1/jobs",
        who="acme",
        json={
            "steps": [
                {"type": "numbers", "params": {"count": 3}},
                {"type": "echo", "params": {"value": "hi"}, "mandatory": False},
                {"type": "numbers", "params": {"count": 4, "label": "own"}, "max_retries": 2},
            ],
            "step_defaults": {"label": "shared"},
            "description": "three steps",
        },
    )
    assert status == 201, job
    assert job["type"] == "callboard.steps" and job["tenant_id"] == "acme"
    assert [s["status"] for s in job["steps"]] == ["pending"] * 3
    assert job["steps"][0]["params"] == {"count": 3, "label": "shared"}
    assert job["steps"][1]["params"] == {"value": "hi"}  # echo declares no label
    assert job["steps"][2]["params"] == {"count": 4, "label": "own"}
    assert [s["mandatory"] for s in job["steps"]] == [True, False, True]
    assert job["steps"][2]["max_retries"] == 2
    await harness.rt.wait(job["id"], timeout=30)
    status, done = await harness.body("GET", f"/api/v1/jobs/{job['id']}", who="acme")
    assert status == 200
    assert done["status"] == "completed" and done["result"] == [3, "hi", 4]
    assert [s["status"] for s in done["steps"]] == ["completed"] * 3
    assert [s["attempts"] for s in done["steps"]] == [1, 1, 1]
    assert all(s["started_at"] and s["finished_at"] for s in done["steps"])
    status, plain = await harness.body("POST", "/api/v1/jobs", json={"type": "echo"})
    assert plain["steps"] is None


async def test_bad_steps_are_422_naming_the_step_and_store_nothing(harness: Harness) -> None:
    before = await harness.rt.count()
    bad = [
        ({"steps": [{"type": "numbers", "params": {"count": "many"}}]}, "invalid_params"),
        ({"steps": [{"type": "nope"}]}, "unknown_job_type"),
        ({"steps": [{"type": "callboard.hook"}]}, "unknown_job_type"),
        ({"steps": []}, "validation_error"),
        ({"type": "echo", "steps": [{"type": "echo"}]}, "validation_error"),
        ({"steps": [{"type": "echo"}], "params": {"value": 1}}, "validation_error"),
        ({"type": "echo", "step_defaults": {"value": 1}}, "validation_error"),
        ({"steps": [{"type": "echo"}], "step_defaults": {"nothing": 1}}, "invalid_request"),
        ({"steps": [{"type": "echo", "retries": 1}]}, "validation_error"),
    ]
    for body, error in bad:
        status, answer = await harness.body("POST", "/api/v1/jobs", json=body)
        assert (status, answer["error"]) == (422, error), (body, answer)
    status, answer = await harness.body(
        "POST",
        "/api/v1/jobs",
        json={"steps": [{"type": "echo"}, {"type": "numbers", "params": {"count": -1}}]},
    )
    assert answer["details"][0]["step"] == 1 and answer["details"][0]["loc"] == ["count"]
    assert await harness.rt.count() == before


async def test_the_openapi_document_describes_steps(harness: Harness) -> None:
    status, doc = await harness.body("GET", "/api/v1/openapi.json")
    assert status == 200
    schemas = doc["components"]["schemas"]
    request = schemas["EnqueueRequest"]["properties"]
    assert {"steps", "step_defaults", "type"} <= set(request)
    assert "StepRequest" in schemas and "JobStep" in schemas
    assert "steps" in schemas["Job"]["properties"]


async def test_a_schedule_of_steps_over_http_fires_multi_step_jobs(harness: Harness) -> None:
    status, schedule = await harness.body(
        "POST",
        "/api/v1/schedules",
        json={
            "steps": [{"type": "numbers", "params": {"count": 1}}, {"type": "echo"}],
            "step_defaults": {"label": "nightly"},
            "every": "1 day",
            "name": "nightly",
        },
    )
    assert status == 201, schedule
    assert schedule["job_type"] == "callboard.steps"
    status, job = await harness.body("POST", f"/api/v1/schedules/{schedule['id']}/trigger")
    assert status == 201 and job["type"] == "callboard.steps"
    assert job["steps"][0]["params"] == {"count": 1, "label": "nightly"}
    done = await harness.rt.wait(job["id"], timeout=30)
    assert done.status == "completed" and done.result == [1, None]
    status, body = await harness.body(
        "POST",
        "/api/v1/schedules",
        json={"steps": [{"type": "callboard.hook"}], "every": "1 day"},
    )
    assert (status, body["error"]) == (422, "unknown_job_type")
    status, body = await harness.body("POST", "/api/v1/schedules", json={"every": "1 day"})
    assert (status, body["error"]) == (422, "invalid_schedule")


async def test_status_hooks_see_the_job_move_step_by_step(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Gates())
    settings = HookSettings(SECRET, attempts=3, backoff=0.02, order_wait=0.01, policy=LOOPBACK)
    hooks = Hooks(registry, settings)
    with trio.fail_after(30):
        async with receiving() as receiver, running(make_runtime, hooks) as rt:
            job = await rt.enqueue_steps(
                [Step("echo", {"value": 1}), Step("boom", {"value": 2}, mandatory=False)],
                status_hook=receiver.url,
            )
            await receiver.wait_for(lambda rs: any(r.body["status"] == "completed" for r in rs))
    sent = [
        (r.body["revision"], r.body["metadata"]["event"], r.body["metadata"]["step"],
         r.body["metadata"]["step_status"] or r.body["status"])
        for r in receiver.requests
    ]  # fmt: skip
    assert sent == [
        (1, "status", None, "waiting"),
        (2, "status", None, "running"),
        (3, "step", 0, "running"),
        (4, "step", 0, "completed"),
        (5, "step", 1, "running"),
        (6, "step", 1, "failed"),
        (7, "status", None, "completed"),
    ]
    assert {r.body["job_id"] for r in receiver.requests} == {str(job.id)}


async def test_the_job_event_stream_shows_each_step(harness: Harness) -> None:
    await harness.body("POST", "/api/v1/queues/default/pause")
    _, job = await harness.body(
        "POST",
        "/api/v1/jobs",
        json={"steps": [{"type": "echo"}, {"type": "gate", "params": {"name": "g"}}]},
    )
    with trio.fail_after(10):
        async with open_stream(harness, f"/api/v1/jobs/{job['id']}/events") as stream:
            first = await stream.next()
            assert first.event == "snapshot" and first.data["steps"][1]["status"] == "pending"
            await harness.body("POST", "/api/v1/queues/default/resume")
            frames = await stream.until("step", step=1, step_status="running")
            harness.gates.open("g")
            frames += await stream.until("status", status="completed")
    steps = [(f.data["step"], f.data["step_status"]) for f in frames if f.event == "step"]
    assert steps == [(0, "running"), (0, "completed"), (1, "running"), (1, "completed")]
    assert frames[-2].event == "step" and frames[-2].data["message"] == ("step 2/2 gate: completed")
