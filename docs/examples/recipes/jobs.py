"""The job type the recipes enqueue (a worker runs it: ``callboard worker --app jobs``)."""

from __future__ import annotations

from pydantic import BaseModel

from runtime import JobContext, Registry

registry = Registry()  # or the default one: @job(...) and no registry= anywhere


class Welcome(BaseModel):
    email: str


@registry.job(name="welcome")
async def welcome(ctx: JobContext, params: Welcome) -> str:
    return f"sent to {params.email}"


def register(target: Registry) -> None:
    """For ``callboard worker --app jobs``."""
    target.add(registry.get("welcome"))
