"""The one way the store leaves the event loop: a worker-thread hop.

Kept in one place so that every database call is a batch per hop, and so
that tests driving a mock clock can keep the loop busy while a thread
works (an idle loop would let the clock jump ahead of the database).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def run_sync(fn: Callable[..., T], *args: object) -> T:
    return await anyio.to_thread.run_sync(fn, *args)
