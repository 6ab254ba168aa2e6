"""Demo job types, so a fresh ``callboard serve --demo`` shows real work.

``demo.count`` counts with progress (and resumes from its checkpoint),
``demo.sleep`` sleeps with check-ins, ``demo.flaky`` fails at random and
retries with backoff. :func:`demo_schedules` keeps a few of them coming.
"""

from __future__ import annotations

import random
from typing import Any

import anyio
from pydantic import BaseModel, Field

from runtime.domain.errors import Retry
from runtime.jobs.context import JobContext
from runtime.jobs.registry import JobGroup, Queue, Registry

DEMO_QUEUE = "demo"
DEMO_GROUP = "demo"
# (name, job type, params, every): what ``serve --demo`` schedules.
DEMO_SCHEDULES: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("demo-count", "demo.count", {"to": 20}, "10 seconds"),
    ("demo-sleep", "demo.sleep", {"seconds": 3}, "15 seconds"),
    ("demo-flaky", "demo.flaky", {"success_rate": 0.5}, "20 seconds"),
)


class CountParams(BaseModel):
    """Count to ``to``, one step every ``step_seconds``."""

    to: int = Field(default=20, ge=1, le=10_000)
    step_seconds: float = Field(default=0.25, ge=0, le=60)


class SleepParams(BaseModel):
    """Sleep ``seconds``, checking in every second."""

    seconds: float = Field(default=5.0, ge=0, le=3600)


class FlakyParams(BaseModel):
    """Succeed with probability ``success_rate``; retry otherwise."""

    success_rate: float = Field(default=0.5, ge=0, le=1)


def register_demo(registry: Registry) -> Registry:
    """Add the demo job types (group ``demo``, queue ``demo``) to ``registry``."""
    registry.add_group(JobGroup(DEMO_GROUP, "Jobs that show what Callboard does"))
    registry.add_queue(Queue(DEMO_QUEUE, capacity=4))

    @registry.job(name="demo.count", group=DEMO_GROUP, queue=DEMO_QUEUE, timeout=600, max_retries=2)
    async def count(ctx: JobContext, params: CountParams) -> dict[str, int]:
        """Count up with progress, resuming from the last checkpoint."""
        start = int((ctx.checkpoint_state or {}).get("done", 0))
        for i in range(start, params.to):
            await anyio.sleep(params.step_seconds)
            await ctx.progress(current=i + 1, total=params.to)
            if (i + 1) % 5 == 0:
                await ctx.checkpoint({"done": i + 1})
        return {"counted": params.to, "resumed_from": start}

    @registry.job(name="demo.sleep", group=DEMO_GROUP, queue=DEMO_QUEUE, timeout=7200)
    async def sleep(ctx: JobContext, params: SleepParams) -> float:
        """Sleep, saying how long is left."""
        left = params.seconds
        while left > 0:
            await ctx.check_in(f"{left:.0f}s left")
            step = min(1.0, left)
            await anyio.sleep(step)
            left -= step
            await ctx.progress(100.0 * (params.seconds - left) / params.seconds)
        return params.seconds

    @registry.job(
        name="demo.flaky", group=DEMO_GROUP, queue=DEMO_QUEUE, max_retries=3, retry_delay=1.0
    )
    async def flaky(ctx: JobContext, params: FlakyParams) -> str:
        """Fail at random to show retries with backoff."""
        await anyio.sleep(0.5)
        if random.random() > params.success_rate:
            ctx.warn(f"attempt {ctx.attempt} was unlucky")
            raise Retry(reason=f"unlucky on attempt {ctx.attempt}")
        return "lucky"

    return registry
