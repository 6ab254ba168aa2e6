"""A claim reads past windows of candidates that limits leave short of picks.

On PostgreSQL each further window is read in one pipeline with the start of
the picks so far (``Claim._start_reading_on``); on SQLite in a loop before
the start. Either way the claim takes what may start, window after window.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime
from runtime.store.claim import Claim, TypeLimit
from runtime.store.engine import open_engine, writer_connection

pytestmark = pytest.mark.trio


class Empty(BaseModel):
    pass


async def test_a_claim_reads_on_past_two_windows_of_full_types(
    make_runtime: Callable[..., Runtime], registry: Registry, store_url: str
) -> None:
    """30 jobs of each of two types limited to one at once, best first, ahead of
    3 plain jobs: a claim of 4 (a window of 22 candidates) starts one of each
    limited type and two plain jobs, and parks nothing."""

    for name in ("a", "b", "plain"):

        @registry.job(name=name, max_retries=0)
        async def handler(ctx: JobContext, params: Empty) -> None: ...

    async with make_runtime(url=store_url, workers=False) as rt:
        await rt.enqueue_many("a", [{}] * 30, priority=3)
        await rt.enqueue_many("b", [{}] * 30, priority=2)
        await rt.enqueue_many("plain", [{}] * 3, priority=1)
    limits = {name: TypeLimit(max_concurrency=1) for name in ("a", "b")}
    engine = open_engine(store_url)
    try:
        with writer_connection(engine) as conn, conn.begin():
            result = Claim("default", 4, "w", time.time(), limits).apply(conn)
    finally:
        engine.dispose()
    assert Counter(r["type"] for r in result.rows) == {"a": 1, "b": 1, "plain": 2}
    assert [r["priority"] for r in result.rows] == [3, 2, 1, 1]  # best first
    assert result.parked == []
