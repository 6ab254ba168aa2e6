"""Job types for the job-control tests."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel

from runtime import JobContext, Registry


class Work(BaseModel):
    name: str = "w"
    path: str = "/data"
    steps: int = 3
    seconds: float = 1.0


class Trace:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.resumed: list[tuple[str, bool, Any]] = []
        self.first_progress: list[float] = []
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.hooks: list[str] = []


def register(registry: Registry, trace: Trace, **options: Any) -> None:
    async def work(ctx: JobContext, params: Work) -> str:
        key = params.path
        trace.started.append(params.name)
        trace.resumed.append((params.name, ctx.resumed, ctx.checkpoint_state))
        trace.running[key] = trace.running.get(key, 0) + 1
        trace.peak[key] = max(trace.peak.get(key, 0), trace.running[key])
        try:
            done = (ctx.checkpoint_state or {}).get("done", 0)
            trace.first_progress.append(ctx.progress_value)
            for i in range(done, params.steps):
                await anyio.sleep(params.seconds)
                await ctx.checkpoint({"done": i + 1})
                await ctx.progress(current=i + 1, total=params.steps)
            return params.name
        finally:
            trace.running[key] -= 1

    registry.job(name=options.pop("name", "work"), params=Work, max_retries=0, **options)(work)
