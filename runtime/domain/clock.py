"""Wall-clock time anchored on the event loop's clock.

Job times (``scheduled_at``, retry backoff) are wall-clock epoch seconds,
but sleeping happens on the loop's clock. Deriving one from the other keeps
them consistent and lets tests drive both with trio's ``MockClock``: jump
the loop clock an hour and delayed jobs become due.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import anyio

from actors import loop_clock


class Clock:
    """Epoch seconds that advance with the running event loop's clock."""

    def __init__(self) -> None:
        self._offset: float | None = None
        self._loop_time: Callable[[], float] = anyio.current_time

    def anchor(self) -> None:
        """Tie the clock to the current loop; call inside the loop."""
        # The loop's own clock function, looked up once: anyio's finds the
        # running loop on every call, and the hot path asks several times a job.
        self._loop_time = loop_clock()
        self._offset = time.time() - self._loop_time()

    def now(self) -> float:
        if self._offset is None:
            return time.time()
        return self._offset + self._loop_time()

    def loop_time(self, epoch: float) -> float:
        """The loop-clock time at which epoch ``epoch`` arrives."""
        return epoch - (self._offset if self._offset is not None else 0.0)


def to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def to_epoch(value: datetime) -> float:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone; pass an aware one")
    return value.timestamp()
