"""``runtime.client``: the HTTP API's client against a live server (Hypercorn on
a loopback port, over a runtime), async on trio and sync from a thread."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import trio

from runtime import (
    IllegalTransition,
    InvalidParams,
    JobNotFound,
    JobStatus,
    Registry,
    Runtime,
    ScheduleNotFound,
    UnknownJobType,
)
from runtime.api import ApiConfig
from runtime.api.server import serve_api
from runtime.client import (
    AsyncClient,
    Client,
    Forbidden,
    InvalidRequest,
    Unauthorized,
)
from tests.api.conftest import TOKEN_ENTRIES, TOKENS
from tests.api.jobs import Gates, register

pytestmark = pytest.mark.trio


@dataclass
class Server:
    url: str
    rt: Runtime
    gates: Gates

    def client(self, who: str | None = "admin") -> AsyncClient:
        return AsyncClient(self.url, TOKENS[who] if who else None)


@pytest.fixture
async def server(make_runtime: Callable[..., Runtime], registry: Registry) -> AsyncIterator[Server]:
    gates = Gates()
    register(registry, gates)
    async with make_runtime() as rt, trio.open_nursery() as nursery:
        stop = trio.Event()
        serve = partial(
            serve_api,
            rt,
            bind="127.0.0.1:0",
            config=ApiConfig(tokens=TOKEN_ENTRIES),
            shutdown=stop.wait,
        )
        urls = await nursery.start(serve)
        yield Server(urls[0], rt, gates)
        stop.set()


async def test_enqueue_wait_get_and_list(server: Server) -> None:
    async with server.client() as client:
        job = await client.enqueue("echo", {"value": [1, 2]}, priority=5, description="two")
        assert (job.type, job.params, job.priority, job.description) == (
            "echo",
            {"value": [1, 2]},
            5,
            "two",
        )
        done = await client.wait(job.id, timeout=30)
        assert done.status is JobStatus.COMPLETED and done.result == [1, 2]
        assert await client.get(job.id) == await server.rt.get(job.id)
        page = await client.list(type="echo", status=["completed", "failed"])
        assert (page.total, [j.id for j in page.jobs]) == (1, [job.id])
        assert (await client.list(type="numbers")).total == 0
        after = await client.enqueue("numbers", {"count": 3}, depends_on=[job.id])
        assert (await client.wait(after.id, timeout=30)).result == 3


async def test_the_apis_errors_are_the_python_apis(server: Server) -> None:
    rt = server.rt
    unknown = uuid.uuid4()
    async with server.client() as client:
        for call, local in [
            (client.get(unknown), rt.get(unknown)),
            (client.enqueue("nope"), rt.enqueue("nope")),
            (client.enqueue("numbers", {"count": -1}), rt.enqueue("numbers", {"count": -1})),
            (client.get_schedule("nope"), rt.get_schedule("nope")),
            (
                client.enqueue("echo", depends_on=(i for i in [unknown])),
                rt.enqueue("echo", depends_on=[unknown]),
            ),
        ]:
            with pytest.raises(Exception) as over_http:
                await call
            with pytest.raises(Exception) as in_process:
                await local
            assert type(over_http.value) is type(in_process.value)
            assert str(over_http.value) == str(in_process.value)
        with pytest.raises(InvalidParams) as bad:
            await client.enqueue("numbers", {"count": -1})
        assert bad.value.job_type == "numbers" and bad.value.errors[0]["loc"][-1] == "count"
        with pytest.raises(UnknownJobType) as nope:
            await client.enqueue("nope")
        assert nope.value.name == "nope"
        done = await client.wait((await client.enqueue("echo")).id, timeout=30)
        with pytest.raises(IllegalTransition) as illegal:
            await client.cancel(done.id)
        assert (illegal.value.current, illegal.value.action) == ("completed", "cancel")
        with pytest.raises(InvalidRequest) as invalid:
            await client.enqueue("echo", delay=1, at=done.created_at)
        assert invalid.value.status == 422 and "give delay or at, not both" in str(invalid.value)
    async with server.client("acme-viewer") as viewer:
        with pytest.raises(Forbidden):
            await viewer.enqueue("echo")
    async with AsyncClient(server.url, "not-a-token") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.get(done.id)


async def test_control_a_job(server: Server) -> None:
    async with server.client() as client:
        later = await client.enqueue("echo", delay=3600)
        assert later.status is JobStatus.SCHEDULED
        assert (await client.suspend(later.id)).status is JobStatus.SUSPENDED
        assert (await client.resume(later.id)).status is JobStatus.WAITING  # due now
        assert (await client.wait(later.id, timeout=30)).status is JobStatus.COMPLETED
        other = await client.enqueue("echo", delay=3600)
        canceled = await client.cancel(other.id, reason="not needed")
        assert (canceled.status, canceled.cancel_reason) == (JobStatus.CANCELED, "not needed")
        assert (await client.retry(other.id)).status is JobStatus.WAITING
        assert (await client.wait(other.id, timeout=30)).status is JobStatus.COMPLETED
        await client.delete(other.id)
        with pytest.raises(JobNotFound):
            await client.get(other.id)


async def test_wait_times_out_and_a_running_job_cancels(server: Server) -> None:
    async with server.client() as client:
        job = await client.enqueue("gate", {"name": "g"})
        await server.gates.wait_reached("g")
        with pytest.raises(TimeoutError, match=f"job {job.id} did not finish within 0.2 s"):
            await client.wait(job.id, timeout=0.2)
        assert (await client.cancel(job.id)).status is JobStatus.CANCELING
        assert (await client.wait(job.id, timeout=30)).status is JobStatus.CANCELED


async def test_schedules(server: Server) -> None:
    async with server.client("acme") as client:
        made = await client.add_schedule("echo", {"value": 1}, every=3600, name="hourly")
        assert made.name == "hourly" and made.tenant_id == "acme"
        assert (await client.get_schedule("hourly")).id == made.id
        assert [s.id for s in await client.schedules(job_type="echo")] == [made.id]
        assert (await client.pause_schedule("hourly")).paused
        assert not (await client.resume_schedule(made.id)).paused
        job = await client.trigger_schedule("hourly")
        assert (job.schedule_id, job.tenant_id) == (str(made.id), "acme")
        await client.remove_schedule("hourly")
        with pytest.raises(ScheduleNotFound):
            await client.get_schedule("hourly")


async def test_the_token_decides_the_tenant(server: Server) -> None:
    async with server.client("acme") as acme, server.client("globex") as globex:
        job = await acme.enqueue("echo", {"value": "a"})
        assert (job.tenant_id, job.user_id) == ("acme", "acme-ops")
        with pytest.raises(JobNotFound):
            await globex.get(job.id)
        assert (await globex.list()).total == 0


def _sync_use(url: str) -> dict[str, Any]:
    """What a Django view or a script does: no event loop in sight."""
    with Client(url, TOKENS["acme"]) as client:
        job = client.enqueue("numbers", {"count": 7, "label": "seven"}, max_retries=2)
        done = client.wait(job.id, timeout=30)
        with pytest.raises(JobNotFound):
            client.get(uuid.uuid4())
        with pytest.raises(InvalidParams):
            client.enqueue("numbers", {"count": "many"})
        return {
            "status": done.status,
            "result": done.result,
            "max_retries": done.max_retries,
            "listed": [j.id for j in client.list(type="numbers").jobs] == [job.id],
        }


async def test_sync_client_from_a_thread(server: Server) -> None:
    seen = await trio.to_thread.run_sync(_sync_use, server.url)
    assert seen == {
        "status": JobStatus.COMPLETED,
        "result": 7,
        "max_retries": 2,
        "listed": True,
    }
