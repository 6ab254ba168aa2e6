"""The worked example in docs/examples/snapshots: snapshot policies on schedules."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing
from pydantic import ValidationError

from runtime import JobStatus, Registry, Runtime, ScheduleNotFound
from runtime.store import threads
from tests.runtime.scheduling import pin

pytestmark = pytest.mark.trio

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "snapshots"
MINUTE, HOUR = 60.0, 3600.0


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


snapshots = _load("snapshot_policies")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "notes").mkdir(parents=True)
    (data / "todo.txt").write_text("water the plants\n")
    (data / "notes" / "a.md").write_text("# a\n")
    return data


@pytest.fixture
def app(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    mock_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Runtime]:
    snapshots.register(registry)
    # File work hops to a thread; with the mock clock it must be the runtime's hop.
    monkeypatch.setattr(snapshots, "in_thread", threads.run_sync)

    def make(**options: Any) -> Runtime:
        return pin(make_runtime(**options))

    return make


def policy(tree: Path, **fields: Any) -> dict[str, Any]:
    return {"name": "docs", "path": str(tree), **fields}


async def test_policy_takes_tier_snapshots_and_keeps_the_newest_of_each_tier(
    app: Callable[..., Runtime], tree: Path, mock_clock: trio.testing.MockClock
) -> None:
    async with app() as rt:
        await trio.sleep(5 * MINUTE)  # created off the hour: 00:05
        created = await snapshots.create_policy(rt, policy(tree, frequent=3, hourly=2))
        await trio.sleep(3 * HOUR + MINUTE)
        shown = await snapshots.get_policy(rt, "docs")
        takes = await rt.list(type="snapshot.take", limit=100)
        prunes = await rt.list(type="snapshot.prune", limit=100)
    folder = tree.parent / ".snapshots" / "docs"
    # At 03:05 the three newest frequent ones and the two newest hourly ones: a
    # tier's snapshots are kept by their label, not pushed out by another tier's.
    kept = [
        "frequent-20250101-023500",
        "frequent-20250101-025000",
        "frequent-20250101-030500",
        "hourly-20250101-020000",
        "hourly-20250101-030000",
    ]
    assert sorted(p.name for p in folder.iterdir()) == kept
    assert shown["snapshots"] == kept
    assert (folder / kept[0] / "notes" / "a.md").read_text() == "# a\n"
    assert (folder / kept[0] / "todo.txt").read_text() == "water the plants\n"
    assert len(takes) == 12 + 3 and len(prunes) == 12  # every 15 minutes, and hourly
    assert {j.status for j in (*takes, *prunes)} == {JobStatus.COMPLETED}
    assert created["next_runs"] == {
        "prune": "2025-01-01T00:20:00+00:00",
        "frequent": "2025-01-01T00:20:00+00:00",
        "hourly": "2025-01-01T01:00:00+00:00",
    }


async def test_retention_keeps_one_snapshot_per_day_across_days(
    app: Callable[..., Runtime], tree: Path, mock_clock: trio.testing.MockClock
) -> None:
    async with app() as rt:
        await snapshots.create_policy(rt, policy(tree, daily=3, tz="Europe/Berlin"))
        await trio.sleep(5 * 24 * HOUR)
    names = sorted(p.name for p in (tree.parent / ".snapshots" / "docs").iterdir())
    # Midnight in Berlin is 23:00 UTC in winter; five were taken, three are kept.
    assert names == [f"daily-202501{d:02}-230000" for d in (3, 4, 5)]


async def test_without_autosnap_nothing_is_taken_until_asked(
    app: Callable[..., Runtime], tree: Path, mock_clock: trio.testing.MockClock
) -> None:
    async with app() as rt:
        created = await snapshots.create_policy(rt, policy(tree, daily=7, autosnap=False))
        await trio.sleep(2 * 24 * HOUR)
        assert (await snapshots.get_policy(rt, "docs"))["snapshots"] == []
        job = await snapshots.take_snapshot(rt, "docs", "daily")
        done = await rt.wait(job["id"], timeout=60)
    assert created["next_runs"]["daily"] is None and created["snapshots"] == []
    assert done.status is JobStatus.COMPLETED
    assert done.result == {"snapshot": "daily-20250103-000000", "files": 2}


async def test_policies_are_listed_replaced_and_deleted(
    app: Callable[..., Runtime], tree: Path, mock_clock: trio.testing.MockClock
) -> None:
    async with app() as rt:
        await snapshots.create_policy(rt, policy(tree, hourly=24, daily=7))
        await snapshots.create_policy(rt, policy(tree, name="other", weekly=4, autoprune=False))
        replaced = await snapshots.create_policy(rt, policy(tree, daily=7))
        listed = await snapshots.list_policies(rt)
        await snapshots.delete_policy(rt, "other")
        left = await rt.schedules()
        with pytest.raises(ScheduleNotFound):
            await snapshots.get_policy(rt, "other")
    assert [p["name"] for p in listed] == ["docs", "other"]
    assert replaced["hourly"] == 0 and set(replaced["next_runs"]) == {"prune", "daily"}
    assert listed[1]["next_runs"]["prune"] is None  # autoprune off: its schedule is paused
    assert sorted(s.name for s in left) == [
        "snapshot-policy:docs:daily",
        "snapshot-policy:docs:prune",
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "keep at least one snapshot in some tier"),
        ({"daily": -1}, "daily\n  Input should be greater than or equal to 0"),
        ({"daily": 1, "name": "a b"}, "name\n  String should match pattern"),
        ({"daily": 1, "color": "red"}, "color\n  Extra inputs are not permitted"),
        ({"daily": 1, "dataset": "pool/data"}, "give the directory as path or as dataset"),
        ({"daily": 1, "path": None}, "give the directory as path or as dataset"),
        ({"daily": 1, "path": None, "dataset": "pool/../etc"}, "dataset\n  String should match"),
    ],
)
async def test_bad_policy_is_refused_and_stores_nothing(
    app: Callable[..., Runtime],
    tree: Path,
    mock_clock: trio.testing.MockClock,
    fields: dict[str, Any],
    message: str,
) -> None:
    async with app(workers=False) as rt:
        with pytest.raises(ValidationError, match=message):
            await snapshots.create_policy(rt, policy(tree, **fields))
        with pytest.raises(ValueError, match="is not a directory"):
            await snapshots.create_policy(rt, policy(tree / "missing", daily=1))
        assert await rt.schedules() == []


async def test_policies_over_http(
    make_runtime: Callable[..., Runtime], registry: Registry, tree: Path
) -> None:
    from runtime.api import ApiConfig, create_app

    snapshots.register(registry)
    async with make_runtime(workers=False) as rt:
        app = create_app(rt, ApiConfig(), extra_routes=[snapshots.api_routes])
        async with app.test_app() as test_app:
            client = test_app.test_client()
            body = {"name": "docs", "path": str(tree), "hourly": 24, "daily": 7}
            created = await client.post("/api/v1/snapshot-policies", json=body)
            assert created.status_code == 201
            assert (await created.get_json())["next_runs"].keys() == {"hourly", "daily", "prune"}
            listing = await (await client.get("/api/v1/snapshot-policies")).get_json()
            assert [p["name"] for p in listing["policies"]] == ["docs"]
            bad = await client.post("/api/v1/snapshot-policies", json={**body, "hourly": -1})
            assert bad.status_code == 422
            missing = await client.post(
                "/api/v1/snapshot-policies", json={**body, "path": str(tree / "nope")}
            )
            assert missing.status_code == 422
            assert (await client.get("/api/v1/snapshot-policies/docs")).status_code == 200
            assert (await client.delete("/api/v1/snapshot-policies/docs")).status_code == 204
            assert (await client.get("/api/v1/snapshot-policies/docs")).status_code == 404
            spec = await (await client.get("/openapi.json")).get_json()
            assert "/api/v1/snapshot-policies" in spec["paths"]


def snapshot(name: str) -> Any:
    stamp = datetime.strptime(name[-15:], snapshots.STAMP).replace(tzinfo=UTC)
    return snapshots.Snapshot(name, name.split("-")[0], stamp)


async def test_pruning_counts_each_tier_by_its_label() -> None:
    found = [snapshot(f"hourly-20250101-0{h}0000") for h in range(5)]
    found += [snapshot("daily-20250101-000000"), snapshot("daily-20250102-000000")]
    found += [snapshot("manual-20250101-010000")]
    policy = snapshots.SnapshotPolicy(name="p", path="/srv", hourly=2, daily=0, frequent=1)
    plan = snapshots.plan_prune(found, policy)
    assert [s.name for s in plan.keep] == [
        "hourly-20250101-030000",
        "hourly-20250101-040000",
        "manual-20250101-010000",  # no tier of the policy's: left alone
    ]
    assert [s.name for s in plan.prune] == [
        "daily-20250101-000000",  # a tier the policy keeps none of
        "daily-20250102-000000",
        "hourly-20250101-000000",
        "hourly-20250101-010000",
        "hourly-20250101-020000",
    ]


async def test_an_atlasos_policy_body_over_http(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runtime.api import ApiConfig, create_app

    (tmp_path / "pool" / "dataset").mkdir(parents=True)
    monkeypatch.setattr(snapshots, "DATASET_ROOT", tmp_path)
    snapshots.register(registry)
    body = {
        "dataset": "pool/dataset",
        "hourly": 24,
        "daily": 7,
        "autosnap": True,
        "autoprune": True,
    }
    async with make_runtime(workers=False) as rt:
        app = create_app(rt, ApiConfig(), extra_routes=[snapshots.api_routes])
        async with app.test_app() as test_app:
            client = test_app.test_client()
            created = await client.post("/api/v1/snapshot-policies", json=body)
            assert created.status_code == 201, await created.get_json()
            policy = await created.get_json()
            missing = await client.post(
                "/api/v1/snapshot-policies", json={**body, "dataset": "pool/other"}
            )
            missing_body = await missing.get_json()
            shown = await client.get("/api/v1/snapshot-policies/pool_dataset")
            assert shown.status_code == 200
    assert (policy["name"], policy["dataset"], policy["path"]) == (
        "pool_dataset",
        "pool/dataset",
        None,
    )
    assert (policy["hourly"], policy["daily"], policy["autosnap"]) == (24, 7, True)
    assert policy["next_runs"].keys() == {"hourly", "daily", "prune"}
    assert missing.status_code == 422
    assert "dataset 'pool/other': path" in missing_body["message"]
