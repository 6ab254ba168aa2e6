"""Job types for the browser tests (``callboard serve --app tests.dashboard.browser_app``)."""

from __future__ import annotations

import anyio
from pydantic import BaseModel, Field

from runtime import Fail, JobContext, Queue, Registry

MANY_QUEUE = "many"


class CountParams(BaseModel):
    """Count to ``steps``, one step every ``step_seconds``."""

    steps: int = Field(default=20, ge=1, le=10_000)
    step_seconds: float = Field(default=0.2, ge=0, le=60)


class Empty(BaseModel):
    pass


class ParentParams(BaseModel):
    """Children of ``slow.count``: one of ``short`` steps, one of ``long``."""

    short: int = Field(default=1, ge=1, le=100)
    long: int = Field(default=20, ge=1, le=1000)


def register(registry: Registry) -> None:
    registry.add_queue(Queue(MANY_QUEUE, capacity=1000))

    @registry.job(name="slow.count", max_retries=0, timeout=600)
    async def count(ctx: JobContext, params: CountParams) -> int:
        """Counts slowly with progress, check-ins and checkpoints (resumes where it was)."""
        start = int((ctx.checkpoint_state or {}).get("done", 0))
        for i in range(start, params.steps):
            await anyio.sleep(params.step_seconds)
            await ctx.progress(current=i + 1, total=params.steps)
            await ctx.check_in(f"step {i + 1} of {params.steps}")
            await ctx.checkpoint({"done": i + 1})
        return params.steps

    @registry.job(name="many.tick", queue=MANY_QUEUE, max_retries=0, timeout=600)
    async def tick(ctx: JobContext, params: CountParams) -> int:
        """Reports progress every ``step_seconds`` (for the 1,000-jobs test)."""
        for i in range(params.steps):
            await anyio.sleep(params.step_seconds)
            await ctx.progress(current=i + 1, total=params.steps)
        return params.steps

    @registry.job(name="slow.parent", max_retries=0, timeout=600)
    async def parent(ctx: JobContext, params: ParentParams) -> list[object]:
        """Spawns a short and a long ``slow.count`` child and waits for both."""
        steps = [params.short, params.long]
        await ctx.spawn_many("slow.count", [{"steps": n, "step_seconds": 0.2} for n in steps])
        return [r.result for r in await ctx.wait_children()]

    @registry.job(name="always.fails", max_retries=0)
    async def fails(ctx: JobContext, params: Empty) -> None:
        """Fails at once."""
        raise Fail("this job always fails")
