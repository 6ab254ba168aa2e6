"""The systems a run compares: limits, peers and Callboard itself.

A system names the driver module its child processes import, the store it
needs and the interpreter it runs under. Workloads (or single steps) a system
cannot do are declared here with the reason, and reported as "n/a".

Adding a peer: write ``benchmarks/drivers/<name>.py`` with its ``STEPS`` and
give it an ``Environment`` with its pinned requirements. A store's limit has
``role="limit"``: the report uses it as the limit of that store's table
(raw_sqlite for SQLite, raw_psycopg for PostgreSQL). A ``role="floor"`` system
runs Callboard's own schema and statements with nothing else around them: the
report shows Callboard's figures against it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from benchmarks.environments import Environment
from benchmarks.stores import StoreKind

Role = Literal["limit", "floor", "peer", "subject"]

HUEY_ENVIRONMENT = Environment(name="huey", requirements=("huey==3.5.4",))
# psycopg's C build, as Callboard has: procrastinate alone pulls in the pure-Python one.
PROCRASTINATE_ENVIRONMENT = Environment(
    name="procrastinate", requirements=("procrastinate==3.10.0", "psycopg[binary]==3.3.9")
)
PGQUEUER_ENVIRONMENT = Environment(
    name="pgqueuer", requirements=("pgqueuer==1.6.0", "asyncpg==0.32.0")
)

_NO_STORE = "no store: the limit of trio alone"
_NO_EXECUTOR = "no executor: the limit of the store alone"
_SQLITE_ONLY = "measured on SQLite only so far (issue 22)"
_STORE_LIMIT_NOT_APPLICABLE = {
    "latency": _NO_EXECUTOR,
    "sleepy": _NO_EXECUTOR,
    "progress": _NO_EXECUTOR,
    "memory.running": _NO_EXECUTOR,
}


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
            **_STORE_LIMIT_NOT_APPLICABLE,
            "enqueue_concurrent": "one connection: the same as enqueue_single",
        },
    ),
    System(
        name="floor",
        role="floor",
        store="sqlite",
        driver="floor_sqlite",
        summary="sqlite3 alone on Callboard's own schema and compiled statements, "
        "same pragmas, parameters built before the clock",
        not_applicable={
            "enqueue_concurrent": "one connection: the same as enqueue_single",
            **_STORE_LIMIT_NOT_APPLICABLE,
            "memory": _NO_EXECUTOR,
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
            "enqueue_concurrent": _NO_STORE,
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
    System(
        name="raw_psycopg",
        role="limit",
        store="postgresql",
        driver="raw_psycopg",
        summary="psycopg 3 alone: a jobs table, enqueue by autocommit INSERT or COPY, "
        "claim 100 jobs per transaction with FOR UPDATE SKIP LOCKED, complete them in another",
        not_applicable={**_STORE_LIMIT_NOT_APPLICABLE, "enqueue_concurrent": _SQLITE_ONLY},
    ),
    System(
        name="procrastinate",
        role="peer",
        store="postgresql",
        driver="procrastinate_pg",
        summary="procrastinate's App on its PsycopgConnector, an async worker "
        "with the workload's concurrency",
        environment=PROCRASTINATE_ENVIRONMENT,
        not_applicable={
            "progress": "procrastinate has no progress API",
            "enqueue_concurrent": _SQLITE_ONLY,
        },
    ),
    System(
        name="pgqueuer",
        role="peer",
        store="postgresql",
        driver="pgqueuer_pg",
        summary="pgqueuer's PgQueuer on asyncpg, batch size and concurrency limit "
        "set to the workload's concurrency",
        environment=PGQUEUER_ENVIRONMENT,
        not_applicable={
            "progress": "pgqueuer has no progress API",
            "enqueue_concurrent": _SQLITE_ONLY,
        },
    ),
    System(
        name="callboard_pg",
        role="subject",
        store="postgresql",
        driver="callboard",
        summary="Callboard on PostgreSQL through its public API",
    ),
)

SYSTEMS_BY_NAME: Mapping[str, System] = {system.name: system for system in SYSTEMS}
