"""A user's module, checked by ``mypy --strict`` in test_typed.py (never imported by tests)."""

from __future__ import annotations

import uuid

import anyio
from pydantic import BaseModel

from runtime import Job, JobContext, JobStatus, Runtime, job


class Resize(BaseModel):
    path: str
    width: int = 256


@job(name="resize_typed", queue="compute", timeout=60, max_retries=2)
async def resize(ctx: JobContext, params: Resize) -> dict[str, int]:
    await anyio.sleep(0.01)
    await ctx.progress(current=1, total=1)
    await ctx.check_in("half way")
    ctx.warn("careful")
    attempt: int = ctx.attempt
    job_id: uuid.UUID = ctx.id
    ctx.log.info("resized %s", job_id)
    return {"width": params.width, "attempt": attempt}


async def main(url: str) -> JobStatus:
    async with Runtime(url, queues={"compute": 1}) as rt:
        queued: Job = await rt.enqueue("resize_typed", Resize(path="a.png"))
        again: Job = await rt.get(queued.id)
        done: Job = await rt.wait(again.id, timeout=30)
        return done.status


async def reveal(rt: Runtime, ctx: JobContext) -> None:
    reveal_type(rt.enqueue)  # noqa: F821
    reveal_type(rt.get)  # noqa: F821
    reveal_type(rt.wait)  # noqa: F821
    reveal_type(job)  # noqa: F821
    reveal_type(resize)  # noqa: F821
    reveal_type(ctx.progress)  # noqa: F821
    reveal_type(ctx.check_in)  # noqa: F821
    reveal_type(ctx.job)  # noqa: F821
    reveal_type(ctx.attempt)  # noqa: F821
