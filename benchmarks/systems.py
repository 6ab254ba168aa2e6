"""The systems a run compares: limits, peers and Callboard itself.

A system names the driver module its child processes import, the store it
needs and the interpreter it runs under. Workloads (or single steps) a system
cannot do are declared here with the reason, and reported as "n/a".

Adding a peer (procrastinate, pgqueuer, raw psycopg with FOR UPDATE SKIP
LOCKED): write ``benchmarks/drivers/<name>.py`` with its ``STEPS``, give it an
``Environment`` with its pinned requirements, and ``store="postgresql"`` once
``stores.provision`` can create PostgreSQL databases. A raw psycopg limit gets
``role="limit"``; the report then uses it as the store limit of the
PostgreSQL table, as raw_sqlite is for the SQLite one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from benchmarks.environments import Environment
from benchmarks.stores import StoreKind

Role = Literal["limit", "peer", "subject"]

HUEY_ENVIRONMENT = Environment(name="huey", requirements=("huey==3.5.4",))

_NO_STORE = "no store: the limit of trio alone"
_NO_EXECUTOR = "no executor: the limit of the store alone"


@dataclass(frozen=True)
class System:
    name: str
    role: Role
    store: StoreKind
    driver: str
    """Module under ``benchmarks.drivers`` that the child process imports."""
    summary: str
    environment: Environment | None = None
    """None: the runner's own interpreter (which has Callboard and trio)."""
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    """Workload name, or ``workload.step``, mapped to why it is not measured."""

    def reason_not_applicable(self, workload: str, step: str | None = None) -> str | None:
        if workload in self.not_applicable:
            return self.not_applicable[workload]
        if step is not None:
            return self.not_applicable.get(f"{workload}.{step}")
        return None


SYSTEMS: tuple[System, ...] = (
    System(
        name="raw_sqlite",
        role="limit",
        store="sqlite",
        driver="raw_sqlite",
        summary="sqlite3 alone: a jobs table, WAL, synchronous=NORMAL, "
        "claim and complete 100 jobs per transaction",
        not_applicable={
            "latency": _NO_EXECUTOR,
            "sleepy": _NO_EXECUTOR,
            "progress": _NO_EXECUTOR,
            "memory.running": _NO_EXECUTOR,
        },
    ),
    System(
        name="raw_trio",
        role="limit",
        store="none",
        driver="raw_trio",
        summary="trio alone: spawn no-op tasks through a CapacityLimiter",
        not_applicable={
            "enqueue_single": _NO_STORE,
            "enqueue_bulk": _NO_STORE,
            "progress": _NO_STORE,
            "memory.idle": _NO_STORE,
        },
    ),
    System(
        name="huey",
        role="peer",
        store="sqlite",
        driver="huey_sqlite",
        summary="huey's SqliteHuey with thread workers, run by its consumer API",
        environment=HUEY_ENVIRONMENT,
        not_applicable={"progress": "huey has no progress API"},
    ),
    System(
        name="callboard",
        role="subject",
        store="sqlite",
        driver="callboard",
        summary="Callboard on SQLite through its public API",
    ),
)

SYSTEMS_BY_NAME: Mapping[str, System] = {system.name: system for system in SYSTEMS}
