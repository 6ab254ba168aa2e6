"""The limited type of ``test_limits_processes.py``, shared by its worker processes."""

from __future__ import annotations

import psycopg
import trio
from pydantic import BaseModel

from runtime import JobContext, Registry
from runtime.store.tables import ACTIVE_SQL, jobs

TYPE = "capped"
LIMIT = 2


class Empty(BaseModel):
    pass


def active_of_type(url: str) -> int:
    """The jobs of ``TYPE`` active in the store, as committed (its own connection)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {jobs.name} WHERE type = %s AND status IN {ACTIVE_SQL}",
            (TYPE,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def register(registry: Registry, url: str) -> None:
    @registry.job(name=TYPE, max_concurrency=LIMIT, max_retries=0)
    async def capped(ctx: JobContext, params: Empty) -> int:
        seen = await trio.to_thread.run_sync(active_of_type, url)
        await trio.sleep(0.01)
        return seen
