"""A runtime and its HTTP API on either store, with handlers that produce what
no store keeps as given (tests/chaos/test_inputs.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime
from runtime.api import ApiConfig, create_app
from tests.api.conftest import TOKEN_ENTRIES, Harness
from tests.api.jobs import Gates
from tests.api.jobs import register as register_api_jobs

RAW_NAME = "caf\udce9.txt"  # os.listdir's name for b"caf\xe9.txt" on a UTF-8 system


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


RESULTS: dict[str, Any] = {
    "deep": nested(100_000),
    "nan": {"ratio": float("nan")},
    "infinity": [1.0, float("inf")],
    "surrogate": {"files": [RAW_NAME]},
    "surrogate_key": {RAW_NAME: 1},
}
"""Results no store keeps as given, by name: each fails its job."""


class Produce(BaseModel):
    kind: str


class Key(BaseModel):
    key: str = "k"
    gate: str = "default"  # where the job waits for the test


def register(registry: Registry, gates: Gates) -> None:
    """The API tests' job types, and the ones these tests need."""
    register_api_jobs(registry, gates)

    @registry.job(name="result", max_retries=0)
    async def result(ctx: JobContext, params: Produce) -> Any:
        return RESULTS[params.kind]

    @registry.job(name="text", max_retries=0)
    async def text(ctx: JobContext, params: Produce) -> str:
        """Writes text that no store keeps as given, the way ``kind`` says."""
        if params.kind == "warn":
            ctx.warn(f"cannot read {RAW_NAME}")
        elif params.kind == "log":
            ctx.log.info("%s", "\udcff")
        elif params.kind == "log_nul":
            ctx.log.warning("a\x00b", extra={"path": RAW_NAME, "ratio": float("nan")})
        elif params.kind == "check_in":
            await ctx.check_in(f"reading {RAW_NAME}\x00")
        elif params.kind == "raise":
            raise FileNotFoundError(f"no {RAW_NAME}\x00")
        return "done"

    @registry.job(name="held", max_retries=0, lock="{key}")
    async def held(ctx: JobContext, params: Key) -> str:
        gates._get(gates.reached, params.gate).set()
        await gates._get(gates.events, params.gate).wait()
        return "held"

    @registry.job(name="single", max_retries=0, unique=True)
    async def single(ctx: JobContext, params: Key) -> str:
        await gates._get(gates.events, params.gate).wait()
        return "single"


@asynccontextmanager
async def open_harness(
    make_runtime: Callable[..., Runtime], url: str, registry: Registry, gates: Gates
) -> AsyncIterator[Harness]:
    register(registry, gates)
    config = ApiConfig(tokens=TOKEN_ENTRIES, sse_keepalive=5.0, sse_poll=5.0)
    async with make_runtime(url=url) as rt:
        app = create_app(rt, config)
        async with app.test_app() as test_app:
            yield Harness(rt, app, test_app.test_client(), gates)


async def wait_finished(h: Harness, job_id: str, who: str = "admin") -> dict[str, Any]:
    """The job once finished, read over HTTP (which answers every job it stores)."""
    with anyio.fail_after(10):
        while True:
            status, job = await h.body(
                "GET", f"/api/v1/jobs/{job_id}/wait", who=who, query={"timeout": 5}
            )
            assert status in (200, 202), job
            if status == 200:
                return job  # type: ignore[no-any-return]
