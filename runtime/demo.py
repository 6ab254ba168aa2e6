"""Demo job types, so a fresh ``callboard serve --demo`` shows real work."""

from __future__ import annotations

import random

import anyio
from pydantic import BaseModel, Field

from runtime.context import JobContext
from runtime.errors import Retry
from runtime.registry import JobGroup, Queue, Registry


class CountParams(BaseModel):
    """Count to ``to``, one step every ``step_seconds``."""

    to: int = Field(default=20, ge=1, le=10_000)
    step_seconds: float = Field(default=0.25, ge=0, le=60)


class FlakyParams(BaseModel):
    """Succeed with probability ``success_rate``; retry otherwise."""

    success_rate: float = Field(default=0.5, ge=0, le=1)


def register_demo(registry: Registry) -> Registry:
    """Add the demo job types (group ``demo``, queue ``demo``) to ``registry``."""
    registry.add_group(JobGroup("demo", "Jobs that show what Callboard does"))
    registry.add_queue(Queue("demo", capacity=4))

    @registry.job(name="demo.count", group="demo", queue="demo", timeout=600, max_retries=2)
    async def count(ctx: JobContext, params: CountParams) -> dict[str, int]:
        """Count up with progress, resuming from the last checkpoint."""
        start = int((ctx.checkpoint_state or {}).get("done", 0))
        for i in range(start, params.to):
            await anyio.sleep(params.step_seconds)
            await ctx.progress(current=i + 1, total=params.to)
            if (i + 1) % 5 == 0:
                await ctx.checkpoint({"done": i + 1})
        return {"counted": params.to, "resumed_from": start}

    @registry.job(name="demo.flaky", group="demo", queue="demo", max_retries=3, retry_delay=1.0)
    async def flaky(ctx: JobContext, params: FlakyParams) -> str:
        """Fail at random to show retries with backoff."""
        await anyio.sleep(0.5)
        if random.random() > params.success_rate:
            ctx.warn(f"attempt {ctx.attempt} was unlucky")
            raise Retry(reason=f"unlucky on attempt {ctx.attempt}")
        return "lucky"

    return registry
