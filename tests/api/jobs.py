"""Job types for the API tests: each finishes when the test says so."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel, Field

from runtime import Fail, JobContext, Registry


class Echo(BaseModel):
    value: Any = None


class Gate(BaseModel):
    name: str = "default"
    progress: float = Field(default=50.0, ge=0, le=100)


class Numbers(BaseModel):
    count: int = Field(ge=0, le=100)
    label: str = "x"


class Gates:
    """Named events a ``gate`` job waits for, and what it reached."""

    def __init__(self) -> None:
        self.events: dict[str, anyio.Event] = {}
        self.reached: dict[str, anyio.Event] = {}

    def _get(self, table: dict[str, anyio.Event], name: str) -> anyio.Event:
        return table.setdefault(name, anyio.Event())

    def open(self, name: str = "default") -> None:
        self._get(self.events, name).set()

    async def wait_reached(self, name: str = "default") -> None:
        await self._get(self.reached, name).wait()


def register(registry: Registry, gates: Gates) -> None:
    @registry.job(name="echo", max_retries=0)
    async def echo(ctx: JobContext, params: Echo) -> Any:
        return params.value

    @registry.job(name="numbers", max_retries=0)
    async def numbers(ctx: JobContext, params: Numbers) -> int:
        return params.count

    @registry.job(name="gate", max_retries=0)
    async def gate(ctx: JobContext, params: Gate) -> str:
        await ctx.progress(params.progress)
        await ctx.check_in(f"waiting at {params.name}")
        gates._get(gates.reached, params.name).set()
        await gates._get(gates.events, params.name).wait()
        return f"passed {params.name}"

    @registry.job(name="boom", max_retries=0)
    async def boom(ctx: JobContext, params: Echo) -> None:
        raise Fail(f"boom: {params.value}")
