"""What handlers and clients put into a job: stored and readable for good, or
refused at once; never half-stored, never the runtime's end. And tenants
share no keys. Every test runs a real runtime on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio

from runtime import InvalidParams, InvalidSchedule, Registry, Runtime
from tests.api.conftest import Harness
from tests.api.jobs import Gates
from tests.api.sse import open_stream
from tests.chaos.inputs_support import RAW_NAME, RESULTS, open_harness, wait_finished

pytestmark = pytest.mark.trio

ESCAPED_NAME = "caf\\udce9.txt"


@pytest.fixture
async def h(
    make_runtime: Callable[..., Runtime], store_url: str, registry: Registry, gates: Gates
) -> AsyncIterator[Harness]:
    async with open_harness(make_runtime, store_url, registry, gates) as harness:
        yield harness


@pytest.fixture
def gates() -> Gates:
    return Gates()


async def enqueue(h: Harness, who: str = "admin", **body: Any) -> dict[str, Any]:
    status, job = await h.body("POST", "/api/v1/jobs", who=who, json=body)
    assert status in (200, 201), job
    return job  # type: ignore[no-any-return]


async def readable(h: Harness, job_id: str, who: str = "admin") -> dict[str, Any]:
    """The job, as every read of the API answers it: all 200."""
    status, job = await h.body("GET", f"/api/v1/jobs/{job_id}", who=who)
    assert status == 200, job
    status, page = await h.body("GET", "/api/v1/jobs", who=who, query={"page_size": 200})
    assert status == 200, page
    assert job_id in {j["id"] for j in page["jobs"]}
    status, log = await h.body("GET", f"/api/v1/jobs/{job_id}/logs", who=who)
    assert status == 200, log
    job["log"] = [r["message"] for r in log["records"]]
    job["log_extra"] = [r["extra"] for r in log["records"]]
    return job  # type: ignore[no-any-return]


# -- results -------------------------------------------------------------------------


async def test_result_nested_100000_deep_fails_its_job_and_the_runtime_runs_on(
    h: Harness,
) -> None:
    deep = await enqueue(h, type="result", params={"kind": "deep"})
    done = await wait_finished(h, deep["id"])
    assert done["status"] == "failed"
    assert done["error"] == (
        "the result cannot be stored: result.0.0.0.0.(93 more).0.0.0: "
        "it nests deeper than 100 levels"
    )
    # The runtime still runs jobs, and answers for the failed one.
    after = await enqueue(h, type="echo", params={"value": "still here"})
    assert (await wait_finished(h, after["id"]))["result"] == "still here"
    assert (await readable(h, deep["id"]))["result"] is None


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("nan", "result.ratio: nan is not a JSON number"),
        ("infinity", "result.1: inf is not a JSON number"),
        ("surrogate", "result.files.0: holds an unpaired surrogate"),
        ("surrogate_key", f"result.{ESCAPED_NAME}: its key holds an unpaired surrogate"),
    ],
)
async def test_result_no_store_keeps_fails_its_job_naming_where(
    h: Harness, kind: str, why: str
) -> None:
    assert kind in RESULTS
    job = await enqueue(h, type="result", params={"kind": kind})
    done = await wait_finished(h, job["id"])
    assert (done["status"], done["result"]) == ("failed", None)
    assert done["error"] == f"the result cannot be stored: {why}"
    await readable(h, job["id"])


async def test_job_stream_of_an_unstorable_result_ends_with_the_failure(h: Harness) -> None:
    await h.body("POST", "/api/v1/queues/default/pause")
    job = await enqueue(h, type="result", params={"kind": "surrogate"})
    with trio.fail_after(10):
        async with open_stream(h, f"/api/v1/jobs/{job['id']}/events") as stream:
            assert (await stream.next()).event == "snapshot"
            await h.body("POST", "/api/v1/queues/default/resume")
            frames = await stream.until("status", status="failed")
            with pytest.raises(trio.EndOfChannel):
                await stream.next()
    assert "holds an unpaired surrogate" in frames[-1].data["message"]


# -- handler text --------------------------------------------------------------------


async def test_warning_no_store_keeps_is_stored_escaped_with_a_note(h: Harness) -> None:
    job = await enqueue(h, type="text", params={"kind": "warn"})
    assert (await wait_finished(h, job["id"]))["status"] == "completed"
    read = await readable(h, job["id"])
    assert read["errors"] == [f"cannot read {ESCAPED_NAME}"]
    assert any("ctx.warn: 1 character(s)" in m for m in read["log"])


async def test_log_record_no_store_keeps_is_stored_escaped_and_the_job_ends(
    h: Harness,
) -> None:
    # It used to fail the finish write and leave the job running past a stop.
    job = await enqueue(h, type="text", params={"kind": "log"})
    assert (await wait_finished(h, job["id"]))["status"] == "completed"
    read = await readable(h, job["id"])
    index = read["log"].index("\\udcff")
    assert read["log_extra"][index] == {"escaped": 1}


async def test_log_record_with_nul_and_unstorable_extra_is_stored_escaped(h: Harness) -> None:
    job = await enqueue(h, type="text", params={"kind": "log_nul"})
    assert (await wait_finished(h, job["id"]))["status"] == "completed"
    read = await readable(h, job["id"])
    index = read["log"].index("a\\x00b")
    extra = read["log_extra"][index]
    assert (extra["path"], extra["ratio"], extra["escaped"]) == (ESCAPED_NAME, "nan", 1)


async def test_check_in_no_store_keeps_is_stored_escaped(h: Harness) -> None:
    job = await enqueue(h, type="text", params={"kind": "check_in"})
    assert (await wait_finished(h, job["id"]))["status"] == "completed"
    read = await readable(h, job["id"])
    assert read["check_in"] == f"reading {ESCAPED_NAME}\\x00"
    assert any("ctx.check_in: 2 character(s)" in m for m in read["log"])


async def test_exception_text_no_store_keeps_fails_the_job_escaped(h: Harness) -> None:
    job = await enqueue(h, type="text", params={"kind": "raise"})
    done = await wait_finished(h, job["id"])
    assert (done["status"], done["error"]) == (
        "failed",
        f"FileNotFoundError: no {ESCAPED_NAME}\\x00",
    )
    await readable(h, job["id"])


async def test_unstorable_log_text_lets_a_graceful_stop_finish_the_job(
    make_runtime: Callable[..., Runtime], store_url: str, registry: Registry, gates: Gates
) -> None:
    async with open_harness(make_runtime, store_url, registry, gates) as harness:
        job = await enqueue(harness, type="text", params={"kind": "log"})
        await harness.rt.wait(job["id"], timeout=10)
    async with make_runtime(url=store_url, workers=False) as rt:
        assert (await rt.get(job["id"])).status == "completed"


# -- client input: refused at once, nothing stored ------------------------------------

NUL = "q\x00"
NUL_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("/api/v1/jobs", {"type": "echo", "queue": NUL}, "body.queue"),
    ("/api/v1/jobs", {"type": "echo", "idempotency_key": NUL}, "body.idempotency_key"),
    ("/api/v1/jobs", {"type": "echo", "lock_key": NUL}, "body.lock_key"),
    ("/api/v1/jobs", {"type": "echo", "params": {"value": {"a": [NUL]}}}, "body.params.value.a.0"),
    ("/api/v1/jobs", {"type": "echo", "params": {NUL: 1}}, "body.params"),
    ("/api/v1/jobs", {"type": NUL}, "body.type"),
    ("/api/v1/schedules", {"job_type": "echo", "every": 60, "name": NUL}, "body.name"),
    (
        "/api/v1/schedules",
        {"job_type": "echo", "every": 60, "params": {"value": NUL}},
        "body.params.value",
    ),
    ("/api/v1/schedules", {"job_type": "echo", "cron": "* * * * *", "tz": NUL}, "body.tz"),
]
FILTERS = ("type", "group", "queue", "schedule_id", "idempotency_key")


async def nothing_stored(h: Harness) -> None:
    assert await h.rt.count() == 0
    assert await h.rt.schedules() == []


async def test_nul_in_a_body_is_422_naming_the_field_and_stores_nothing(h: Harness) -> None:
    for path, body, field in NUL_BODIES:
        status, answer = await h.body("POST", path, json=body)
        assert (status, answer["error"]) == (422, "validation_error"), (path, body, answer)
        assert answer["message"].startswith(f"invalid body: {field}"), answer
        assert "NUL" in answer["message"]
    await nothing_stored(h)


async def test_nul_in_a_filter_is_422_naming_it(h: Harness) -> None:
    await enqueue(h, type="echo")
    for route in ("/api/v1/jobs", "/api/v1/events"):
        for name in FILTERS:
            status, answer = await h.body("GET", route, query={name: NUL})
            assert (status, answer["error"]) == (422, "validation_error"), (route, name)
            assert answer["details"][0]["loc"] == ["query", name]
    status, answer = await h.body("GET", "/api/v1/schedules", query={"job_type": NUL})
    assert (status, answer["details"][0]["loc"]) == (422, ["query", "job_type"])


async def test_nul_in_a_schedule_id_is_not_found_on_every_schedule_route(h: Harness) -> None:
    routes = [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("POST", "/trigger"),
    ]
    for method, tail in routes:
        json = {"paused": True} if method == "PATCH" else None
        status, answer = await h.body(method, f"/api/v1/schedules/a%00b{tail}", json=json)
        assert (status, answer["error"]) == (404, "not_found"), (method, tail, answer)
    await nothing_stored(h)


async def test_unstorable_client_input_is_refused_by_the_python_api(h: Harness) -> None:
    rt = h.rt
    surrogate = RAW_NAME
    for option in ("queue", "lock_key", "tenant_id", "user_id"):
        for bad in (NUL, surrogate):
            with pytest.raises(ValueError, match=f"^{option} holds a"):
                await rt.enqueue("echo", {}, **{option: bad})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^idempotency_key holds a NUL"):
        await rt.enqueue("echo", {}, idempotency_key=NUL)
    bad_params: list[tuple[Any, str]] = [
        ({"value": NUL}, "value: holds a NUL character"),
        ({"value": [surrogate]}, "value.0: holds an unpaired surrogate"),
        ({"value": math.nan}, "value: nan is not a JSON number"),
        ({"value": {"x": -math.inf}}, "value.x: -inf is not a JSON number"),
        ({"value": RESULTS["deep"]}, "it nests deeper than 100 levels"),
    ]
    for params, why in bad_params:
        pattern = re.escape(why)
        with pytest.raises(InvalidParams, match=pattern):
            await rt.enqueue("echo", params)
        with pytest.raises(InvalidParams, match=f"item 1: .*{pattern}"):
            await rt.enqueue_many("echo", [{"value": 1}, params])
        with pytest.raises(InvalidParams):
            await rt.add_schedule("echo", params, every=60)
    for name in ("type", "queue", "group", "tenant_id", "schedule_id", "idempotency_key"):
        with pytest.raises(ValueError, match=f"^{name} holds a NUL"):
            await rt.list(**{name: NUL})
        with pytest.raises(ValueError, match=f"^{name} holds a NUL"):
            await rt.count(**{name: NUL})
    with pytest.raises(ValueError, match=r"^idempotency_key holds"):
        await rt.get_by_idempotency_key(NUL)
    with pytest.raises(InvalidSchedule, match=r"^name holds a NUL"):
        await rt.add_schedule("echo", every=60, name=NUL)
    for call in (rt.get_schedule, rt.pause_schedule, rt.resume_schedule, rt.remove_schedule):
        with pytest.raises(ValueError, match=r"^schedule_id holds a NUL"):
            await call(NUL)
    job = await rt.enqueue("echo", {}, delay=3600)
    for read in (rt.get, rt.cancel, rt.delete, rt.logs):
        with pytest.raises(ValueError, match=r"^tenant_id holds a NUL"):
            await read(job.id, tenant_id=NUL)
    with pytest.raises(ValueError, match=r"^tenant_id holds a NUL"):
        await rt.statistics(tenant_id=NUL)
    await rt.delete((await rt.cancel(job.id)).id)
    await nothing_stored(h)


async def test_python_api_queue_names_with_nul_store_nothing_on_sqlite_either(
    h: Harness,
) -> None:
    # SQLite used to store a queue named "q\x00" that no worker serves.
    with pytest.raises(ValueError, match=r"^queue holds a NUL"):
        await h.rt.enqueue_many("echo", [{}] * 100, queue=NUL)
    await nothing_stored(h)


# -- tenants share no keys -----------------------------------------------------------


async def test_a_tenant_never_waits_on_another_tenants_lock_nor_sees_its_holder(
    h: Harness,
) -> None:
    held = await enqueue(h, who="acme", type="held", params={"key": "db", "gate": "acme"})
    with trio.fail_after(10):
        await h.gates.wait_reached("acme")
    # The same key, by template (globex) and given outright (no tenant): both
    # run at once, beside acme's holder.
    by_template = await enqueue(h, who="globex", type="held", params={"key": "db", "gate": "gx"})
    given = await enqueue(h, type="echo", lock_key="db", params={"value": 1})
    assert by_template["locked_by"] is None and given["locked_by"] is None
    assert (await wait_finished(h, given["id"]))["status"] == "completed"
    with trio.fail_after(10):
        await h.gates.wait_reached("gx")
    # Within a tenant, the key still holds: acme's second job waits on its first.
    second = await enqueue(h, who="acme", type="echo", lock_key="db")
    assert (second["status"], second["locked_by"]) == ("locked", held["id"])
    h.gates.open("acme")
    h.gates.open("gx")
    assert (await wait_finished(h, second["id"], who="acme"))["status"] == "completed"
    for job in (held, by_template, given, second):
        assert (await h.rt.get(job["id"])).locked_by in (None, held["id"])
    _, page = await h.body("GET", "/api/v1/jobs", who="globex")
    assert held["id"] not in str(page)


async def test_idempotency_and_unique_keys_are_per_tenant(h: Harness) -> None:
    mine = await enqueue(h, who="acme", type="echo", idempotency_key="k")
    theirs = await enqueue(h, who="globex", type="echo", idempotency_key="k")
    assert mine["id"] != theirs["id"]
    again = await enqueue(h, who="globex", type="echo", idempotency_key="k")
    assert again["id"] == theirs["id"]
    _, page = await h.body("GET", "/api/v1/jobs", who="globex", query={"idempotency_key": "k"})
    assert [j["id"] for j in page["jobs"]] == [theirs["id"]]
    one = await enqueue(h, who="acme", type="single", params={"key": "u", "gate": "u"})
    other = await enqueue(h, who="globex", type="single", params={"key": "u", "gate": "u"})
    same = await enqueue(h, who="acme", type="single", params={"key": "u", "gate": "u"})
    assert one["id"] != other["id"] and same["id"] == one["id"]
    h.gates.open("u")


async def test_queue_listings_show_no_other_tenants_queue_names(h: Harness) -> None:
    await enqueue(h, who="acme", type="echo", queue="acme-private", delay=3600)
    _, listing = await h.body("GET", "/api/v1/queues", who="globex")
    assert "acme-private" not in {q["name"] for q in listing["queues"]}
    _, listing = await h.body("GET", "/api/v1/queues", who="acme")
    assert "acme-private" in {q["name"] for q in listing["queues"]}
