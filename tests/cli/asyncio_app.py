"""An ``--app`` module whose handler needs asyncio (as an asyncio database driver does)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from runtime import JobContext, Registry

QUEUE = "aio"


class Nothing(BaseModel):
    pass


async def asyncio_only(ctx: JobContext, params: Nothing) -> str:
    await asyncio.sleep(0.001)  # under trio: RuntimeError: no running event loop
    return type(asyncio.get_running_loop()).__name__


def register(registry: Registry) -> None:
    registry.job(name="asyncio_only", queue=QUEUE, max_retries=0)(asyncio_only)
