"""Timer actors: a due-time alarm and a periodic ticker.

Both sleep on the event loop's clock, so tests drive them with trio's
``MockClock``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskStatus


class DueTimer:
    """Calls ``fire()`` when the earliest known due time arrives.

    ``fire`` returns the next due time it knows of (or None). ``note(t)``
    brings the alarm forward when something new becomes due earlier;
    ``recheck`` bounds how long it trusts its own knowledge (work written by
    other processes).
    """

    def __init__(
        self,
        fire: Callable[[], Awaitable[float | None]],
        *,
        now: Callable[[], float],
        recheck: float = 1.0,
    ) -> None:
        self._fire = fire
        self._now = now
        self._recheck = recheck if recheck > 0 else math.inf
        self._due = -math.inf  # fire once at start: catch up on what is already due
        self._recheck_at = math.inf
        self._changed = anyio.Event()

    def note(self, due: float) -> None:
        if due < self._due:
            self._due = due
            self._changed.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._changed = anyio.Event()
            delay = min(self._due, self._recheck_at) - self._now()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._changed.wait()
                continue
            self._due = math.inf
            self._recheck_at = self._now() + self._recheck
            nxt = await self._fire()
            if nxt is not None:
                self._due = min(self._due, nxt)


class Ticker:
    """Calls ``tick()`` every ``interval`` seconds until cancelled."""

    def __init__(self, tick: Callable[[], Awaitable[None]], interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"ticker interval must be > 0, got {interval}")
        self._tick = tick
        self.interval = interval

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await anyio.sleep(self.interval)
            await self._tick()
