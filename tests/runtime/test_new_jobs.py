"""A bulk enqueue of jobs that carry no key: stored from one shared row and the
columns set per job (``runtime.store.new_jobs``), on both stores.

What it returns, stores and announces must be what a row per job gives.
"""

from __future__ import annotations

import copy
import json
import pickle
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from runtime import Job, JobContext, Registry, Runtime
from runtime.jobs import enqueue
from runtime.jobs.enqueue import build_new_jobs, build_rows
from runtime.store import bulk_insert
from runtime.store.new_jobs import InsertNewJobs, NewJobs, insert_new_jobs
from runtime.store.ops import BULK_MIN_ROWS, InsertJobs
from tests.conftest import QUIET

COUNT = BULK_MIN_ROWS + 6


class Item(BaseModel):
    n: int
    tags: list[str] = []


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    @registry.job(name="item", queue="items", lock=None)
    async def item(ctx: JobContext, params: Item) -> None:
        return None

    def make() -> Runtime:
        return Runtime(store_url, registry=registry, workers=False, **QUIET)  # type: ignore[arg-type]

    return make


@pytest.mark.trio
async def test_a_keyless_bulk_enqueue_returns_stores_and_announces_every_job(
    on_store: Callable[..., Runtime],
) -> None:
    items = [{"n": i, "tags": ["a"] * (i % 3)} for i in range(COUNT)]
    async with on_store() as rt:
        with rt.subscribe() as events:
            jobs = await rt.enqueue_many("item", items, priority=3, description="d")
            announced = [events.receive_nowait() for _ in range(COUNT)]
            assert events.receive_nowait() is None
        stored = [await rt.get(job.id) for job in jobs]
    assert [job.model_dump() for job in jobs] == [job.model_dump() for job in stored]
    assert [job.params for job in jobs] == items
    assert [e.job_id for e in announced if e is not None] == [job.id for job in jobs]
    # No two snapshots share a mutable value.
    assert len({id(j.params) for j in jobs}) == len({id(j.errors) for j in jobs}) == COUNT


@pytest.mark.trio
async def test_an_enqueue_of_no_jobs_stores_nothing_and_still_checks_its_options(
    on_store: Callable[..., Runtime],
) -> None:
    async with on_store() as rt:
        assert await rt.enqueue_many("item", []) == []
        with pytest.raises(ValueError, match="priority"):
            await rt.enqueue_many("item", [], priority=10**9)
        assert await rt.count() == 0


def test_only_keyless_batches_of_bulk_size_skip_the_rows(registry: Registry) -> None:
    @registry.job(name="plain")
    async def plain(ctx: JobContext, params: Item) -> None:
        return None

    job_type = registry.get("plain")
    items = [{"n": i} for i in range(BULK_MIN_ROWS)]
    assert isinstance(insert_new_jobs(build_new_jobs(job_type, items, now=1.0)), InsertNewJobs)
    few = insert_new_jobs(build_new_jobs(job_type, items[:-1], now=1.0))
    keyed = build_new_jobs(job_type, items, now=1.0, idempotency_keys=["k", *[None] * 63])
    locked = build_new_jobs(job_type, items, now=1.0, lock_key="l")
    assert isinstance(few, InsertJobs)
    assert not keyed.keyless and not locked.keyless
    assert isinstance(insert_new_jobs(keyed), InsertJobs)


def test_new_jobs_rows_set_every_column_of_each_job(registry: Registry) -> None:
    @registry.job(name="plain")
    async def plain(ctx: JobContext, params: Item) -> None:
        return None

    new = build_new_jobs(registry.get("plain"), [{"n": 1}, {"n": 2}], now=1.0)
    rows = new.rows()
    assert [r["id"] for r in rows] == new.ids and [r["params"] for r in rows] == [
        {"n": 1, "tags": []},
        {"n": 2, "tags": []},
    ]
    assert all(r.keys() == new.shared.keys() for r in rows)
    assert rows[0] is not rows[1] and len(NewJobs(new.shared, {"id": [], "params": []})) == 0


def test_job_ids_are_the_uuids_uuid_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = enqueue.new_job_ids(50)
    for job_id in ids:
        made = uuid.UUID(int=job_id.int)
        assert job_id == made and hash(job_id) == hash(made) and str(job_id) == str(made)
        assert job_id.is_safe is made.is_safe and uuid.UUID(str(job_id)) == job_id
        assert pickle.loads(pickle.dumps(job_id)) == job_id == copy.deepcopy(job_id)


class Stamped(BaseModel):
    n: int = 0
    stamp: str = ""

    def model_post_init(self, context: Any, /) -> None:
        object.__setattr__(self, "stamp", next(_STAMPS))


_STAMPS: Iterator[str] = (str(i) for i in range(10**9))


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The items each JobType.validate call was given."""
    from runtime.jobs.registry import JobType

    seen: list[Any] = []
    validate = JobType.validate

    def spy(self: JobType, params: Any) -> BaseModel:
        seen.append(params)
        return validate(self, params)

    monkeypatch.setattr(JobType, "validate", spy)
    return seen


def test_an_item_given_again_is_validated_once_for_a_model_of_no_code(
    registry: Registry, validations: list[Any]
) -> None:
    @registry.job(name="plain")
    async def plain(ctx: JobContext, params: Item) -> None:
        return None

    item, equal = {"n": 1, "tags": ["x"]}, {"n": 1, "tags": ["x"]}
    rows = build_rows(registry.get("plain"), [item, item, equal, item], now=1.0)
    assert validations == [item, equal]  # the very same dict once; an equal one anew
    assert [r["params"] for r in rows] == [{"n": 1, "tags": ["x"]}] * 4
    tags = {id(r["params"]["tags"]) for r in rows}
    assert len({id(r["params"]) for r in rows}) == len(tags) == 4  # copies, none shared


def test_an_item_given_again_is_validated_again_when_its_model_runs_code(
    registry: Registry, validations: list[Any]
) -> None:
    @registry.job(name="stamped")
    async def stamped(ctx: JobContext, params: Stamped) -> None:
        return None

    item = {"n": 1}
    rows = build_rows(registry.get("stamped"), [item] * 3, now=1.0)
    assert len(validations) == 3
    assert len({r["params"]["stamp"] for r in rows}) == 3


@pytest.mark.trio
async def test_params_of_one_item_given_for_every_job_are_bound_once(
    make_runtime: Callable[..., Runtime], registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    @registry.job(name="plain")
    async def plain(ctx: JobContext, params: Item) -> None:
        return None

    documented: list[tuple[str, ...]] = []
    columns_statement = bulk_insert.columns_statement

    def spy(dialect: Any, table: Any, columns: Any, shared: Any, per_job: Any) -> Any:
        documented.append(tuple(per_job))
        return columns_statement(dialect, table, columns, shared, per_job)

    monkeypatch.setattr(bulk_insert, "columns_statement", spy)
    item = {"n": 7, "tags": ["a", "é"]}
    async with make_runtime(workers=False) as rt:
        same = await rt.enqueue_many("plain", [item] * COUNT)
        equal = await rt.enqueue_many("plain", [dict(item) for _ in range(COUNT)])
        stored = [await rt.get(job.id) for job in [*same, *equal]]
    assert documented == [("id",), ("id", "params")]
    assert {json.dumps(job.params) for job in stored} == {json.dumps(item)}
    assert [job.params for job in same] == [item] * COUNT


def test_snapshots_from_columns_are_those_from_row_makes(registry: Registry) -> None:
    @registry.job(name="plain")
    async def plain(ctx: JobContext, params: Item) -> None:
        return None

    items = [{"n": i} for i in range(4)]
    keyed = build_new_jobs(
        registry.get("plain"), items, now=1.5, idempotency_keys=["a", None, "c", "d"]
    )
    keyless = build_new_jobs(registry.get("plain"), items, now=1.5)
    for new in (keyed, keyless):
        made = Job.from_columns(new.shared, new.per_job)
        one_by_one = [Job.from_row(row) for row in new.rows()]
        assert [repr(job) for job in made] == [repr(job) for job in one_by_one]
        assert len({id(job.errors) for job in made}) == len({id(job.params) for job in made}) == 4
    assert Job.from_columns(keyless.shared, {"id": [], "params": []}) == []
