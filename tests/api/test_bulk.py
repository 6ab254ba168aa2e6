"""``POST /api/v1/jobs/bulk/{action}``, ``GET /jobs`` search and tenant, ``GET /whoami``."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.jobs.bulk import BULK_LIMIT_MAX
from tests.api.conftest import Harness

pytestmark = pytest.mark.trio


async def enqueue(h: Harness, who: str = "admin", **body: Any) -> dict[str, Any]:
    status, job = await h.body("POST", "/api/v1/jobs", who=who, json=body)
    assert status == 201, job
    return job  # type: ignore[no-any-return]


async def bulk(h: Harness, action: str, who: str = "admin", **body: Any) -> tuple[int, Any]:
    return await h.body("POST", f"/api/v1/jobs/bulk/{action}", who=who, json=body)


async def test_bulk_retry_retries_failed_jobs_and_counts_the_skipped(harness: Harness) -> None:
    failed = [await enqueue(harness, type="boom", params={"value": i}) for i in range(3)]
    done = await enqueue(harness, type="echo")
    for job in [*failed, done]:
        await harness.rt.wait(job["id"], timeout=30)
    status, body = await bulk(harness, "retry", status="failed,completed")
    assert status == 200, body
    assert body == {
        "action": "retry",
        "dry_run": False,
        "matched": 4,
        "selected": 4,
        "changed": 3,
        "skipped": 1,
        "skipped_by_status": {"completed": 1},
        "remaining": 0,
    }
    for job in failed:
        assert (await harness.rt.wait(job["id"], timeout=30)).attempt == 2


async def test_bulk_is_scoped_to_the_tokens_tenant(harness: Harness) -> None:
    mine = [await enqueue(harness, "acme", type="echo", delay=3600) for _ in range(2)]
    theirs = await enqueue(harness, "globex", type="echo", delay=3600)
    status, body = await bulk(harness, "cancel", "acme", status="scheduled", reason="moved")
    assert (status, body["matched"], body["changed"]) == (200, 2, 2)
    assert {(await harness.rt.get(j["id"])).cancel_reason for j in mine} == {"moved"}
    status, body = await bulk(harness, "retry", "acme", status="canceled", reason="no")
    assert status == 422 and "cancel only" in body["message"]
    assert {(await harness.rt.get(j["id"])).status for j in mine} == {"canceled"}
    assert (await harness.rt.get(theirs["id"])).status == "scheduled"
    # Another tenant's jobs are not the caller's to pick; an admin may pick one.
    status, body = await bulk(harness, "cancel", "acme", status="scheduled", tenant="globex")
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await bulk(harness, "cancel", status="scheduled", tenant="globex")
    assert (status, body["changed"]) == (200, 1)


async def test_bulk_needs_an_operator_a_filter_and_a_bounded_limit(harness: Harness) -> None:
    status, body = await bulk(harness, "delete", "acme-viewer", status="failed")
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await bulk(harness, "delete")
    assert status == 422 and "at least one filter" in body["message"]
    for limit in (0, BULK_LIMIT_MAX + 1):
        status, body = await bulk(harness, "delete", status="failed", limit=limit)
        assert (status, body["details"][0]["loc"]) == (422, ["body", "limit"])
    status, body = await bulk(harness, "explode", status="failed")
    assert status == 404
    status, body = await bulk(harness, "retry", status="sideways")
    assert status == 422 and "unknown status 'sideways'" in body["message"]


async def test_bulk_dry_run_counts_and_the_limit_leaves_the_rest(harness: Harness) -> None:
    jobs = [await enqueue(harness, type="echo", delay=3600) for _ in range(5)]
    status, body = await bulk(harness, "cancel", type="echo", dry_run=True)
    assert (status, body["matched"], body["selected"], body["changed"]) == (200, 5, 5, 0)
    assert {(await harness.rt.get(j["id"])).status for j in jobs} == {"scheduled"}
    status, body = await bulk(harness, "cancel", type="echo", limit=2)
    assert (body["selected"], body["changed"], body["remaining"]) == (2, 2, 3)


async def test_bulk_skips_a_job_whose_status_changed_since_it_was_listed(
    harness: Harness,
) -> None:
    # What the dashboard does: count with dry_run, then act. A job that finished
    # in between is skipped by its compare-and-set, not forced.
    job = await enqueue(harness, type="gate", params={"name": "r"})
    await harness.gates.wait_reached("r")
    _, counted = await bulk(harness, "cancel", status="running", dry_run=True)
    assert counted["matched"] == 1
    harness.gates.open("r")
    await harness.rt.wait(job["id"], timeout=30)
    status, body = await bulk(harness, "cancel", id=None, type="gate")
    assert status == 422  # unknown field "id": bodies refuse extras
    status, body = await bulk(harness, "cancel", type="gate")
    assert (status, body["changed"], body["skipped_by_status"]) == (200, 0, {"completed": 1})


async def test_list_searches_ids_and_keys_and_an_admin_filters_by_tenant(
    harness: Harness,
) -> None:
    a = await enqueue(harness, "acme", type="echo", idempotency_key="invoice-1")
    b = await enqueue(harness, "globex", type="echo", idempotency_key="invoice-2")

    async def ids(who: str, **query: Any) -> set[str]:
        status, page = await harness.body("GET", "/api/v1/jobs", who=who, query=query)
        assert status == 200, page
        return {j["id"] for j in page["jobs"]}

    assert await ids("admin", search="invoice") == {a["id"], b["id"]}
    assert await ids("admin", search="invoice", tenant="globex") == {b["id"]}
    assert await ids("acme", search="invoice") == {a["id"]}
    assert await ids("acme", search=a["id"][:8]) == {a["id"]}
    assert await ids("acme", search=a["id"][-8:].upper()) == {a["id"]}
    assert await ids("acme", search=b["id"]) == set()
    status, body = await harness.body("GET", "/api/v1/jobs", who="acme", query={"tenant": "globex"})
    assert (status, body["error"]) == (403, "forbidden")
    assert await ids("acme", tenant="acme") == {a["id"]}


async def test_whoami_names_the_tokens_role_and_tenant(harness: Harness) -> None:
    status, body = await harness.body("GET", "/api/v1/whoami", who="acme-viewer")
    assert (status, body) == (
        200,
        {"name": "token-3", "tenant_id": "acme", "role": "viewer", "auth": True},
    )
    status, body = await harness.body("GET", "/api/v1/whoami", who=None)
    assert status == 401


async def test_queue_history_counts_the_last_minutes_per_bucket_for_admins(
    harness: Harness,
) -> None:
    jobs = [await enqueue(harness, type="boom", params={"value": 1}) for _ in range(2)]
    jobs.append(await enqueue(harness, type="echo"))
    for job in jobs:
        await harness.rt.wait(job["id"], timeout=30)
    status, body = await harness.body("GET", "/api/v1/queues", query={"history": 5})
    assert (status, body["bucket_seconds"]) == (200, 10.0)
    default = body["history"]["default"]
    assert len(default["completed"]) == len(default["failed"]) == 30
    assert (sum(default["completed"]), sum(default["failed"])) == (1, 2)
    assert default["completed"][-1] + default["completed"][-2] == 1  # just now
    status, body = await harness.body("GET", "/api/v1/queues", who="acme", query={"history": 5})
    assert (status, body["history"]) == (200, None)
    status, body = await harness.body("GET", "/api/v1/queues", query={"history": 61})
    assert status == 422
