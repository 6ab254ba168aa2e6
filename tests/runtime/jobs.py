"""Job types shared by the runtime tests (and by the crash-test subprocess)."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel

from runtime import Fail, JobContext, Registry, Retry, Skip


class Echo(BaseModel):
    value: Any = None


class Steps(BaseModel):
    steps: int = 3
    seconds: float = 1.0


class Behave(BaseModel):
    """Fail the first ``fail_times`` attempts in the given way, then return."""

    how: str = "raise"
    fail_times: int = 1


class Journal:
    """What handlers did, for assertions."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.finally_ran: list[str] = []
        self.checkpoints: list[Any] = []
        self.running = 0
        self.peak = 0


def register(registry: Registry, journal: Journal) -> None:
    @registry.job(name="echo", max_retries=0)
    async def echo(ctx: JobContext, params: Echo) -> Any:
        journal.started.append(("echo", ctx.attempt))
        return params.value

    @registry.job(name="steps", max_retries=0)
    async def steps(ctx: JobContext, params: Steps) -> int:
        journal.running += 1
        journal.peak = max(journal.peak, journal.running)
        journal.started.append(("steps", ctx.attempt))
        journal.checkpoints.append(ctx.checkpoint_state)
        try:
            done = (ctx.checkpoint_state or {}).get("done", 0)
            for i in range(done, params.steps):
                await anyio.sleep(params.seconds)
                await ctx.progress(current=i + 1, total=params.steps)
                await ctx.checkpoint({"done": i + 1})
            return params.steps
        finally:
            journal.running -= 1
            journal.finally_ran.append("steps")

    @registry.job(name="behave", max_retries=3, retry_delay=10.0)
    async def behave(ctx: JobContext, params: Behave) -> str:
        journal.started.append(("behave", ctx.attempt))
        if ctx.attempt <= params.fail_times:
            if params.how == "raise":
                raise RuntimeError(f"boom {ctx.attempt}")
            if params.how == "retry":
                raise Retry(after=60, reason="come back later")
            if params.how == "fail":
                raise Fail("hopeless")
            if params.how == "skip":
                raise Skip("nothing to do")
            if params.how == "sleep":
                await anyio.sleep_forever()
        return f"ok on {ctx.attempt}"
