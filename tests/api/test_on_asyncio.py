"""The HTTP API suite's loop-neutral tests, run again on asyncio: the app is
Quart's own class there (runtime.api.app), over a runtime on asyncio.

Each test below runs the same function as in its home module, through a
wrapper of its own (the anyio plugin marks the functions it collects: a
shared one would take the asyncio marker home); tests that drive trio
directly (SSE streams, connection chaos) stay trio-only.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from quart import Quart
from quart_trio import QuartTrio

from tests.api import (
    test_bad_input,
    test_bulk,
    test_catalogue_and_queues,
    test_dependencies,
    test_jobs,
    test_schedules,
    test_system,
)
from tests.api.conftest import Harness

pytestmark = pytest.mark.anyio

SUITES = (
    test_jobs,
    test_bad_input,
    test_bulk,
    test_catalogue_and_queues,
    test_dependencies,
    test_schedules,
    test_system,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Test = Callable[..., Coroutine[Any, Any, None]]


def _again(test: Test) -> Test:
    @functools.wraps(test)
    async def again(*args: Any, **kwargs: Any) -> None:
        await test(*args, **kwargs)

    return again


def _collect() -> dict[str, Test]:
    found: dict[str, Test] = {}
    for suite in SUITES:
        for name, test in vars(suite).items():
            if name.startswith("test_") and inspect.iscoroutinefunction(test):
                assert name not in found, f"two suites name a test {name}"
                found[name] = _again(test)
    return found


globals().update(_collect())


async def test_the_app_is_quarts_own_on_asyncio(harness: Harness) -> None:
    assert isinstance(harness.app, Quart) and not isinstance(harness.app, QuartTrio)
    status, body = await harness.body("GET", "/readyz", who=None)
    assert status == 200 and body["status"] == "ok"
