"""The small interfaces through which the engine talks to its owner.

The engine never sees a database: whoever builds it hands it a source of
due jobs, a runner that executes one, and a sink for what became of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from actors._messages import Claimed, Outcome


class JobSource(Protocol):
    async def claim(self, queue: str, limit: int) -> Sequence[Claimed]:
        """Take up to ``limit`` due jobs of ``queue``, marking them running."""
        ...


class JobRunner(Protocol):
    async def run(self, job: Claimed) -> Any:
        """Execute the job's handler and return its value."""
        ...


class OutcomeSink(Protocol):
    def finish(self, outcome: Outcome) -> Awaitable[None] | None:
        """Record an outcome.

        The call must hand the outcome over at once (before returning) and
        return an awaitable that completes when it is durable: the engine
        frees the job's slot in between, so that the next claim can share a
        transaction with this outcome. Or it returns None when the sink sees
        to durability itself (its owner must not stop before every outcome
        handed over is durable): the job's task then ends at once.
        """
        ...
