"""``SyncClient``: enqueue and read from sync code, durable on return, no jobs run."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

from runtime import (
    InvalidParams,
    JobContext,
    JobStatus,
    Registry,
    Runtime,
    Step,
    SyncClient,
    UnknownJobType,
)


class Add(BaseModel):
    a: int
    b: int


@pytest.fixture
def registry() -> Registry:
    registry = Registry()

    @registry.job(name="add")
    async def add(ctx: JobContext, params: Add) -> int:
        return params.a + params.b

    return registry


def test_enqueue_from_sync_code_then_a_worker_runs_it(tmp_path: Path, registry: Registry) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with SyncClient(db, registry=registry) as client:
        job = client.enqueue("add", {"a": 1, "b": 2}, priority=5)
        more = client.enqueue_many("add", [{"a": 2, "b": 2}, Add(a=3, b=3)])
        again = client.enqueue("add", {"a": 9, "b": 9}, idempotency_key="k")
        assert client.enqueue("add", {"a": 0, "b": 0}, idempotency_key="k").id == again.id
        assert client.get(job.id).status is JobStatus.WAITING  # the client runs nothing
        with pytest.raises(UnknownJobType):
            client.enqueue("nope", {})
        with pytest.raises(InvalidParams):
            client.enqueue("add", {"a": "x"})
        canceled = client.cancel(again.id, reason="changed my mind")
        assert canceled.status is JobStatus.CANCELED

    async def work() -> list[int]:
        async with Runtime(db, registry=registry) as rt:
            return [(await rt.wait(j.id, timeout=10)).result for j in (job, *more)]

    assert anyio.run(work, backend="trio") == [3, 4, 6]
    with SyncClient(db, registry=registry) as client:
        assert client.wait(job.id, timeout=5).result == 3
        assert client.get(str(more[1].id)).status is JobStatus.COMPLETED


def test_one_client_serves_many_threads(tmp_path: Path, registry: Registry) -> None:
    ids: list[str] = []
    with SyncClient(f"sqlite:///{tmp_path / 'c.db'}", registry=registry) as client:

        def view(n: int) -> None:  # as a web app's request threads would
            ids.append(str(client.enqueue("add", {"a": n, "b": n}).id))

        threads = [threading.Thread(target=view, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {client.get(i).status for i in ids} == {JobStatus.WAITING}
    assert len(set(ids)) == 8


def test_a_closed_client_says_so(tmp_path: Path, registry: Registry) -> None:
    client = SyncClient(f"sqlite:///{tmp_path / 'c.db'}", registry=registry)
    with pytest.raises(RuntimeError, match="not open"):
        client.enqueue("add", {"a": 1, "b": 1})


def test_a_multi_step_job_from_sync_code(tmp_path: Path, registry: Registry) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with SyncClient(db, registry=registry) as client:
        job = client.enqueue_steps(
            [Step("add", {"a": 1}), Step("add", {"a": 5, "b": 5})], step_defaults={"b": 2}
        )
        with pytest.raises(InvalidParams, match="step 0"):
            client.enqueue_steps([Step("add", {"a": "x"})], step_defaults={"b": 2})

    async def work() -> object:
        async with Runtime(db, registry=registry) as rt:
            return (await rt.wait(job.id, timeout=10)).result

    assert job.steps is not None and job.steps[1].params == {"a": 5, "b": 5}
    assert anyio.run(work, backend="trio") == [3, 10]
