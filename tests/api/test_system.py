from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from runtime import Registry, Runtime
from runtime.api import ApiConfig, app_routes, app_state, create_app
from tests.api.conftest import Harness

pytestmark = pytest.mark.trio


async def test_openapi_describes_every_route_with_generated_schemas(harness: Harness) -> None:
    status, doc = await harness.body("GET", "/openapi.json", who=None)
    assert status == 200 and doc["openapi"].startswith("3.1")
    rules = {
        (method, re.sub(r"<(\w+)>", r"{\1}", rule.rule))
        for rule in harness.app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
        and not rule.endpoint.startswith("dashboard ")  # pages, not API: see test_assets
    }
    documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    assert documented == rules
    schemas = doc["components"]["schemas"]
    assert {"Job", "JobEvent", "EnqueueRequest", "JobPage", "ErrorBody", "Schedule"} <= set(schemas)
    assert schemas["EnqueueRequest"]["additionalProperties"] is False
    post = doc["paths"]["/api/v1/jobs"]["post"]
    assert post["x-required-role"] == "operator"
    assert set(post["responses"]) >= {"200", "201", "400", "401", "403", "413", "422"}
    listing = doc["paths"]["/api/v1/jobs"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"status", "page", "page_size"}
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert len(app_routes(harness.app)) == len(rules)


async def test_health_and_readiness(harness: Harness) -> None:
    assert await harness.body("GET", "/healthz", who=None) == (200, {"status": "ok", "checks": {}})
    status, ready = await harness.body("GET", "/readyz", who=None)
    assert (status, ready["checks"]) == (200, {"database": "ok"})
    app_state(harness.app).stop()
    status, ready = await harness.body("GET", "/readyz", who=None)
    assert (status, ready["status"]) == (503, "stopping")


async def test_metrics_count_jobs_and_report_queues(harness: Harness) -> None:
    _, job = await harness.body("POST", "/api/v1/jobs", json={"type": "echo"})
    await harness.body("GET", f"/api/v1/jobs/{job['id']}/wait", query={"timeout": 10})
    _, failed = await harness.body("POST", "/api/v1/jobs", json={"type": "boom"})
    await harness.body("GET", f"/api/v1/jobs/{failed['id']}/wait", query={"timeout": 10})
    await harness.body("POST", "/api/v1/jobs", json={"type": "echo", "delay": 60})
    response = await harness.call("GET", "/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = (await response.get_data()).decode()
    for line in (
        'callboard_jobs_enqueued_total{type="echo"} 2.0',
        'callboard_jobs_started_total{type="boom"} 1.0',
        'callboard_jobs_finished_total{outcome="completed",type="echo"} 1.0',
        'callboard_jobs_finished_total{outcome="failed",type="boom"} 1.0',
        'callboard_job_duration_seconds_count{type="echo"} 1.0',
        'callboard_attempt_wall_seconds_count{type="boom"} 1.0',
        'callboard_attempt_cpu_seconds_count{type="echo"} 1.0',
        'callboard_attempt_peak_memory_bytes_count{type="echo"} 1.0',
        'callboard_job_pickup_latency_seconds_count{queue="default"} 2.0',
        'callboard_queue_jobs{queue="default",status="scheduled"} 1.0',
        'callboard_queue_capacity{queue="default"} 10.0',
        'callboard_queue_paused{queue="default"} 0.0',
    ):
        assert line in text, line


async def test_the_api_runs_on_a_runtime_without_workers(
    make_runtime: Callable[..., Runtime], api_registry: Registry
) -> None:
    async with make_runtime(workers=False) as rt:
        app = create_app(rt, ApiConfig())
        async with app.test_app() as test_app:
            client = test_app.test_client()
            response = await client.post("/api/v1/jobs", json={"type": "echo"})
            assert response.status_code == 201
            response = await client.get("/api/v1/queues")
            assert response.status_code == 200


async def test_applications_add_their_own_routes_with_the_same_checks(
    make_runtime: Callable[..., Runtime], api_registry: Registry
) -> None:
    from pydantic import BaseModel
    from quart import Response

    from runtime.api import ApiState, Role, TokenEntry
    from runtime.api.routing import Api, Call, json_response

    class Hello(BaseModel):
        greeting: str
        tenant: str | None

    def add(api: Api, state: ApiState) -> None:
        @api.route("GET", "/hello", summary="Say hello", tag="app", responses={200: Hello})
        async def hello(call: Call) -> Response:
            return json_response(Hello(greeting="hi", tenant=call.principal.tenant_id))

    token = "an-app-token-0123456789"
    config = ApiConfig(tokens=(TokenEntry(token=token, tenant="acme", role=Role.VIEWER),))
    async with make_runtime() as rt:
        app = create_app(rt, config, extra_routes=[add])
        async with app.test_app() as test_app:
            client = test_app.test_client()
            assert (await client.get("/api/v1/hello")).status_code == 401
            response = await client.get(
                "/api/v1/hello", headers={"Authorization": f"Bearer {token}"}
            )
            assert await response.get_json() == {"greeting": "hi", "tenant": "acme"}
            doc = await (await client.get("/openapi.json")).get_json()
            assert "Hello" in doc["components"]["schemas"] and "/api/v1/hello" in doc["paths"]
