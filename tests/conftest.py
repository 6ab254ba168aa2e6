from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import trio
import trio.testing

from runtime import Registry, Runtime
from runtime.store import threads

T = TypeVar("T")

# Tests never wait on the poll or the heartbeat unless they say so: wake-ups
# must come from events, and mock clocks must not spin through idle ticks.
QUIET = {
    "poll_interval": 10_000.0,
    "heartbeat_interval": 5_000.0,
    "lease": 10_000.0,
    "sweep_interval": 10_000.0,
}


POSTGRES_ENV = "CALLBOARD_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'conformance.db'}"
        return
    yield from _postgres_schema()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A store URL on a fresh schema of the test PostgreSQL server, for what only
    PostgreSQL can show (several runtimes' transactions interleaved)."""
    yield from _postgres_schema()


def _postgres_schema() -> Iterator[str]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL to test against")
    schema = f"cb_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'callboard.db'}"


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def make_runtime(db_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: Any) -> Runtime:
        settings: dict[str, Any] = {**QUIET, "grace_period": 5.0, **options}
        return Runtime(settings.pop("url", db_url), registry=registry, **settings)

    return make


@pytest.fixture
def mock_clock(monkeypatch: pytest.MonkeyPatch) -> trio.testing.MockClock:
    """trio's autojump clock, safe with the store's worker threads.

    An autojump clock jumps whenever every task is blocked, and a task
    waiting for a database thread counts as blocked: the clock would race
    ahead of the database. While a thread works, a helper task keeps the
    loop busy (yielding the GIL to the thread), so time only jumps when the
    runtime is truly idle.
    """
    original = threads.run_sync

    async def busy_run_sync(fn: Callable[..., T], *args: object) -> T:
        done = False

        async def keep_busy() -> None:
            while not done:
                time.sleep(0.0002)  # noqa: ASYNC251  # on purpose: hand the GIL to the thread
                await trio.lowlevel.cancel_shielded_checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_busy)
            try:
                return await original(fn, *args)
            finally:
                done = True

    monkeypatch.setattr(threads, "run_sync", busy_run_sync)
    return trio.testing.MockClock(autojump_threshold=0)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="repeat the chaos and stress tests (tests/chaos/) many times over",
    )


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True under ``--long``: chaos tests repeat many times instead of once or twice."""
    return bool(request.config.getoption("--long"))
