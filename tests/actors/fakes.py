"""An in-memory source, runner and sink: the engine tested without a database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from actors import Claimed, Outcome


class MemorySource:
    def __init__(self, jobs: Sequence[Claimed] = (), *, claim_s: float = 0.0) -> None:
        self.pending = list(jobs)
        self.claims: list[int] = []
        self.claim_s = claim_s  # how long each claim takes

    def add(self, *jobs: Claimed) -> None:
        self.pending.extend(jobs)

    async def claim(self, queue: str, limit: int) -> Sequence[Claimed]:
        await trio.sleep(self.claim_s)
        self.claims.append(limit)
        mine = [j for j in self.pending if j.queue == queue][:limit]
        for job in mine:
            self.pending.remove(job)
        return mine


class ScriptRunner:
    """Runs ``job.payload`` (an async callable) and tracks concurrency."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.started: list[Any] = []

    async def run(self, job: Claimed) -> Any:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.started.append(job.id)
        try:
            body: Callable[[], Awaitable[Any]] = job.payload
            return await body()
        finally:
            self.running -= 1


class ListSink:
    def __init__(self) -> None:
        self.outcomes: dict[Any, Outcome] = {}
        self.changed = trio.Event()

    def finish(self, outcome: Outcome) -> Awaitable[None]:
        self.outcomes[outcome.job.id] = outcome
        self.changed.set()
        return trio.lowlevel.checkpoint()  # noqa: ASYNC105  # the caller awaits it

    async def wait_for(self, count: int) -> None:
        while len(self.outcomes) < count:
            self.changed = trio.Event()
            await self.changed.wait()
