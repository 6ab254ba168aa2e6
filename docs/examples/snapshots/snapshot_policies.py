"""Snapshot policies: a small application built on Callboard schedules.

A *snapshot policy* names a directory and how many snapshots of each tier
to keep (``frequent``, ``hourly``, ``daily``, ``weekly``, ``monthly``,
``yearly``). With ``autosnap`` the runtime copies the directory into the
policy's snapshots folder on each tier's schedule, as
``{tier}-{YYYYMMDD-HHMMSS}`` (the slot time, UTC). With ``autoprune`` it
keeps the newest N snapshots of each tier, N being the tier's count, and
deletes the rest, as atlasOS does: a snapshot's tier is its label, so an
hourly snapshot is never pushed out by frequent ones. Every copy and every
prune is a job: tracked, retried, visible in the dashboard.

A policy names its directory by ``path``, or by ``dataset`` as atlasOS
does (``"pool/dataset"``: the directory ``DATASET_ROOT / dataset``, by
default ``/pool/dataset``, ZFS's default mountpoint; the policy's name
defaults to the dataset's, slashes made underscores).

The policy lives in its schedules (one per tier that keeps snapshots, plus
one for pruning), so it needs no table of its own and survives restarts:

* ``snapshot-policy:{name}:{tier}`` runs ``snapshot.take`` for the tier;
* ``snapshot-policy:{name}:prune`` runs ``snapshot.prune`` and is how
  policies are listed (it always exists; it is paused without autoprune).

The route functions at the bottom take a :class:`runtime.Runtime` and a
JSON body and return JSON-ready dicts, ready for
``POST/GET /api/v1/snapshot-policies``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from runtime import JobContext, Queue, Registry, Runtime, Schedule, ScheduleNotFound

Tier = Literal["frequent", "hourly", "daily", "weekly", "monthly", "yearly"]
TIERS: tuple[Tier, ...] = ("frequent", "hourly", "daily", "weekly", "monthly", "yearly")
TIER_CRON: dict[Tier, str] = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * mon",
    "monthly": "0 0 1 * *",
    "yearly": "0 0 1 1 *",
}
FREQUENT_EVERY_DEFAULT = "15 minutes"
QUEUE = "snapshots"
SCHEDULE_PREFIX = "snapshot-policy:"
STAMP = "%Y%m%d-%H%M%S"
_SNAPSHOT = re.compile(r"^(?P<tier>[a-z]+)-(?P<stamp>\d{8}-\d{6})$")
# A ZFS-like dataset name: components of letters, digits and _.:- (none
# starting with a dot), joined by slashes.
_COMPONENT = r"[A-Za-z0-9_:-][A-Za-z0-9_.:-]*"
DATASET_PATTERN = rf"^{_COMPONENT}(/{_COMPONENT})*$"
DATASET_ROOT = Path("/")  # where datasets are mounted (ZFS's default: /pool/dataset)

# The thread hop for file work. Tests swap in the runtime's mock-clock-safe hop.
in_thread: Callable[..., Any] = anyio.to_thread.run_sync


class SnapshotPolicy(BaseModel):
    """What to snapshot, where to, how often, and how many to keep."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    path: Path | None = None
    dataset: str | None = Field(default=None, pattern=DATASET_PATTERN, max_length=200)
    snapshots: Path | None = None  # default: <path's parent>/.snapshots/<name>
    frequent: int = Field(default=0, ge=0)
    hourly: int = Field(default=0, ge=0)
    daily: int = Field(default=0, ge=0)
    weekly: int = Field(default=0, ge=0)
    monthly: int = Field(default=0, ge=0)
    yearly: int = Field(default=0, ge=0)
    frequent_every: str = FREQUENT_EVERY_DEFAULT
    tz: str = "UTC"  # the tiers' calendar: "daily" is local midnight
    autosnap: bool = True
    autoprune: bool = True

    @model_validator(mode="before")
    @classmethod
    def _name_from_dataset(cls, data: Any) -> Any:
        """atlasOS bodies name a dataset, not a policy: the dataset names it."""
        if isinstance(data, dict) and "name" not in data and isinstance(data.get("dataset"), str):
            return {**data, "name": re.sub(r"[^A-Za-z0-9_.-]", "_", data["dataset"])}
        return data

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        return None if path is None else path.expanduser().absolute()

    @model_validator(mode="after")
    def _keeps_something(self) -> SnapshotPolicy:
        if (self.path is None) == (self.dataset is None):
            raise ValueError("give the directory as path or as dataset (one of them)")
        if not self.tiers:
            raise ValueError("keep at least one snapshot in some tier (frequent ... yearly)")
        return self

    @property
    def source(self) -> Path:
        """The directory to snapshot."""
        if self.path is not None:
            return self.path
        assert self.dataset is not None
        return DATASET_ROOT / self.dataset

    @property
    def tiers(self) -> list[Tier]:
        """The tiers this policy keeps snapshots of."""
        return [tier for tier in TIERS if getattr(self, tier) > 0]

    @property
    def folder(self) -> Path:
        return self.snapshots or self.source.parent / ".snapshots" / self.name


class TakeSnapshot(BaseModel):
    policy: SnapshotPolicy
    tier: str


class PruneSnapshots(BaseModel):
    policy: SnapshotPolicy


@dataclass(frozen=True, slots=True)
class Snapshot:
    name: str
    tier: str
    taken_at: datetime


def snapshots_in(folder: Path) -> list[Snapshot]:
    """The finished snapshots in ``folder``, by name (copies in progress are hidden)."""
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        match = _SNAPSHOT.match(entry.name)
        if match and entry.is_dir():
            taken_at = datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)
            found.append(Snapshot(entry.name, match["tier"], taken_at))
    return found


@dataclass(frozen=True, slots=True)
class PrunePlan:
    keep: list[Snapshot]
    prune: list[Snapshot]


def plan_prune(found: list[Snapshot], policy: SnapshotPolicy) -> PrunePlan:
    """Keep the newest ``count`` snapshots of each tier (by the label in their
    names), ``count`` being the policy's for that tier; prune the others of
    that tier. Snapshots labelled with no tier are left alone."""
    keep: list[Snapshot] = []
    prune: list[Snapshot] = []
    for tier in TIERS:
        labelled = sorted((s for s in found if s.tier == tier), key=lambda s: s.taken_at)
        count = getattr(policy, tier)
        cut = max(0, len(labelled) - count)
        prune += labelled[:cut]
        keep += labelled[cut:]
    keep += [s for s in found if s.tier not in TIERS]
    by_name = sorted(keep, key=lambda s: s.name)
    return PrunePlan(by_name, sorted(prune, key=lambda s: s.name))


def _copy(source: Path, target: Path) -> int:
    """Copy into a hidden folder, then rename: a crash never leaves half a snapshot."""
    partial = target.with_name(f".partial-{target.name}")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, symlinks=True)
    partial.rename(target)
    return sum(1 for p in target.rglob("*") if p.is_file())


def register(registry: Registry) -> None:
    """The two job types and their queue: one snapshot operation at a time."""
    registry.add_queue(Queue(QUEUE, capacity=1))

    # Takes outrank prunes: when both are due at once the new snapshot counts.
    @registry.job(name="snapshot.take", queue=QUEUE, priority=1, max_retries=2)
    async def take(ctx: JobContext, params: TakeSnapshot) -> dict[str, Any]:
        """Copy the policy's directory into its snapshots folder."""
        policy = params.policy
        taken_at = ctx.job.slot or ctx.job.created_at or datetime.now(UTC)
        target = policy.folder / f"{params.tier}-{taken_at.astimezone(UTC):{STAMP}}"
        if target.exists():  # an earlier attempt finished the copy
            return {"snapshot": target.name, "files": None}
        policy.folder.mkdir(parents=True, exist_ok=True)
        files = await in_thread(_copy, policy.source, target)
        await ctx.progress(100)
        return {"snapshot": target.name, "files": files}

    @registry.job(name="snapshot.prune", queue=QUEUE, max_retries=2)
    async def prune(ctx: JobContext, params: PruneSnapshots) -> dict[str, Any]:
        """Delete each tier's snapshots beyond the newest ``count`` of that tier."""
        policy = params.policy
        plan = plan_prune(await in_thread(snapshots_in, policy.folder), policy)
        for done, snapshot in enumerate(plan.prune, start=1):
            await in_thread(shutil.rmtree, policy.folder / snapshot.name)
            await ctx.progress(current=done, total=len(plan.prune))
        return {
            "kept": [s.name for s in plan.keep],
            "pruned": [s.name for s in plan.prune],
        }


# -- routes: plain async functions, ready for POST/GET /api/v1/snapshot-policies ----------


def _schedule_name(policy: str, part: str) -> str:
    return f"{SCHEDULE_PREFIX}{policy}:{part}"


def _when(policy: SnapshotPolicy, tier: Tier) -> dict[str, Any]:
    if tier == "frequent":
        return {"every": policy.frequent_every}
    return {"cron": TIER_CRON[tier], "tz": policy.tz}


def _cadence(policy: SnapshotPolicy) -> dict[str, Any]:
    """Prune as often as the most frequent tier snapshots."""
    return _when(policy, policy.tiers[0])


async def create_policy(
    rt: Runtime, body: Mapping[str, Any], *, tenant_id: str | None = None
) -> dict[str, Any]:
    """Create or replace a policy; ``ValueError`` (pydantic's, field by field) if bad."""
    policy = SnapshotPolicy.model_validate(body)
    if not policy.source.is_dir():
        what = "path" if policy.path is not None else f"dataset {policy.dataset!r}: path"
        raise ValueError(f"{what} {str(policy.source)!r} is not a directory")
    data = policy.model_dump(mode="json")
    for tier in TIERS:
        name = _schedule_name(policy.name, tier)
        if tier in policy.tiers:
            schedule = await rt.add_schedule(
                "snapshot.take",
                {"policy": data, "tier": tier},
                name=name,
                tenant_id=tenant_id,
                **_when(policy, tier),
            )
            await _set_paused(rt, schedule, not policy.autosnap, tenant_id)
        else:
            await _remove(rt, name, tenant_id)
    prune = await rt.add_schedule(
        "snapshot.prune",
        {"policy": data},
        name=_schedule_name(policy.name, "prune"),
        tenant_id=tenant_id,
        **_cadence(policy),
    )
    await _set_paused(rt, prune, not policy.autoprune, tenant_id)
    return await get_policy(rt, policy.name, tenant_id=tenant_id)


async def _set_paused(rt: Runtime, schedule: Schedule, paused: bool, tenant: str | None) -> None:
    if paused and not schedule.paused:
        await rt.pause_schedule(schedule.id, tenant_id=tenant)
    elif schedule.paused and not paused:
        await rt.resume_schedule(schedule.id, tenant_id=tenant)


async def _remove(rt: Runtime, name: str, tenant_id: str | None) -> None:
    with contextlib.suppress(ScheduleNotFound):
        await rt.remove_schedule(name, tenant_id=tenant_id)


async def list_policies(rt: Runtime, *, tenant_id: str | None = None) -> list[dict[str, Any]]:
    prunes = await rt.schedules(job_type="snapshot.prune", tenant_id=tenant_id, limit=1000)
    return [await get_policy(rt, s.params["policy"]["name"], tenant_id=tenant_id) for s in prunes]


async def get_policy(rt: Runtime, name: str, *, tenant_id: str | None = None) -> dict[str, Any]:
    """The policy with its schedules' next runs and the snapshots on disk."""
    prune = await rt.get_schedule(_schedule_name(name, "prune"), tenant_id=tenant_id)
    policy = SnapshotPolicy.model_validate(prune.params["policy"])
    next_runs = {"prune": None if prune.paused else _iso(prune.next_fire_at)}
    for tier in policy.tiers:
        schedule = await rt.get_schedule(_schedule_name(name, tier), tenant_id=tenant_id)
        next_runs[tier] = None if schedule.paused else _iso(schedule.next_fire_at)
    snapshots = await in_thread(snapshots_in, policy.folder)
    return {
        **policy.model_dump(mode="json"),
        "next_runs": next_runs,
        "snapshots": [s.name for s in snapshots],
    }


async def delete_policy(rt: Runtime, name: str, *, tenant_id: str | None = None) -> None:
    """Stop taking and pruning snapshots; the snapshots stay on disk."""
    await rt.get_schedule(_schedule_name(name, "prune"), tenant_id=tenant_id)
    for part in (*TIERS, "prune"):
        await _remove(rt, _schedule_name(name, part), tenant_id)


async def take_snapshot(
    rt: Runtime, name: str, tier: str, *, tenant_id: str | None = None
) -> dict[str, Any]:
    """Take a snapshot of one of the policy's tiers now; returns the job."""
    job = await rt.trigger_schedule(_schedule_name(name, tier), tenant_id=tenant_id)
    return job.model_dump(mode="json")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# -- HTTP routes: ``callboard serve --app snapshot_policies`` mounts these ----------


class PolicyList(BaseModel):
    policies: list[dict[str, Any]]


def api_routes(api: Any, state: Any) -> None:
    """``POST/GET /api/v1/snapshot-policies`` and ``GET/DELETE .../{name}``."""
    from runtime.api.auth import Role
    from runtime.api.errors import ApiError, from_validation
    from runtime.api.routing import Call, json_response

    rt: Runtime = state.runtime
    tag = "snapshot-policies"

    @api.route(
        "POST",
        "/snapshot-policies",
        summary="Create or replace a snapshot policy",
        tag=tag,
        role=Role.OPERATOR,
        body=SnapshotPolicy,
        responses={201: None},
        errors=(422,),
    )
    async def create(call: Call) -> Any:
        """Its tiers' schedules and its prune schedule are created (or replaced)."""
        body = call.body_as(SnapshotPolicy).model_dump(mode="json")
        try:
            view = await create_policy(rt, body, tenant_id=call.principal.tenant_id)
        except ValidationError as err:
            raise from_validation(err, "body") from err
        except ValueError as err:
            raise ApiError(422, "invalid_policy", str(err)) from err
        return json_response(view, 201)

    @api.route(
        "GET",
        "/snapshot-policies",
        summary="List snapshot policies",
        tag=tag,
        responses={200: PolicyList},
    )
    async def listing(call: Call) -> Any:
        """Every policy of the caller's tenant."""
        policies = await list_policies(rt, tenant_id=call.principal.scope)
        return json_response({"policies": policies})

    @api.route(
        "GET",
        "/snapshot-policies/{name}",
        summary="Read a snapshot policy",
        tag=tag,
        responses={200: None},
        errors=(404,),
    )
    async def one(call: Call) -> Any:
        """The policy, its next runs and the snapshots on disk."""
        return json_response(
            await get_policy(rt, call.path["name"], tenant_id=call.principal.scope)
        )

    @api.route(
        "DELETE",
        "/snapshot-policies/{name}",
        summary="Delete a snapshot policy",
        tag=tag,
        role=Role.OPERATOR,
        responses={204: None},
        errors=(404,),
    )
    async def remove(call: Call) -> Any:
        """Stop snapshotting and pruning; the snapshots stay on disk."""
        await delete_policy(rt, call.path["name"], tenant_id=call.principal.scope)
        return json_response({}, 204)
