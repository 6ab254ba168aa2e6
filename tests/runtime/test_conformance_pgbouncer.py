"""The PostgreSQL conformance suite again, through pgbouncer in transaction
mode (prepared statements off), and the leader behind it.

Skips when pgbouncer is not installed (``scripts/test.sh`` installs it) or
``CALLBOARD_TEST_POSTGRES_URL`` is not set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import trio

from runtime import Registry, Runtime
from runtime.store.engine import open_engine
from tests.conftest import POSTGRES_ENV, QUIET
from tests.runtime.pgbouncer_support import Bouncer, find_pgbouncer, schema_through
from tests.runtime.test_conformance import *  # noqa: F403  # its tests run here again
from tests.runtime.test_failover_order import (  # noqa: F401  # run here again
    test_a_rescued_job_runs_before_the_backlog_of_its_priority,
    test_jobs_enqueued_together_run_in_the_order_given,
)

pytestmark = pytest.mark.trio


@pytest.fixture(scope="module")
def bouncer() -> Iterator[Bouncer]:
    base = os.environ.get(POSTGRES_ENV)
    binary = find_pgbouncer()
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL to test against")
    if binary is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    running = Bouncer(binary, base)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def store_url(bouncer: Bouncer) -> Iterator[str]:  # the suite's, through pgbouncer
    yield from schema_through(bouncer)


async def test_the_store_runs_with_prepared_statements_off(store_url: str) -> None:
    assert "prepare_threshold=none" in store_url
    async with Runtime(store_url, registry=Registry(), **QUIET) as rt:  # type: ignore[arg-type]
        conn = await trio.to_thread.run_sync(rt.store.engine.raw_connection)
        try:
            assert conn.driver_connection.prepare_threshold is None  # type: ignore[union-attr]
        finally:
            conn.close()


async def test_one_runtime_leads_behind_pgbouncer(store_url: str, registry: Registry) -> None:
    settings = {**QUIET, "grace_period": 5.0}
    first = Runtime(store_url, registry=registry, **settings)  # type: ignore[arg-type]
    second = Runtime(store_url, registry=registry, **settings)  # type: ignore[arg-type]
    async with first, second:
        assert first.leading and not second.leading


@pytest.mark.parametrize("value", ["often", "-1", "1.5"])
async def test_a_bad_prepare_threshold_is_a_clear_error(value: str) -> None:
    # Refused before any connection is tried (nothing listens on port 1).
    with pytest.raises(ValueError, match="prepare_threshold"):
        open_engine(f"postgresql://u@127.0.0.1:1/db?prepare_threshold={value}")
