"""Background services through a storage fault: log once, retry with backoff.

A service (due-job promotion, heartbeat and rescue, the sweeper, the
scheduler, the progress flusher) that met a full disk or a lost connection
must not take the runtime down: it waits and tries again until the database
answers, and says so once in the log rather than on every try.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from runtime.domain.errors import StorageUnavailable
from runtime.jobs.backoff import retry_delay

log = logging.getLogger("callboard.runtime")

T = TypeVar("T")

SERVICE_RETRY_BASE_DEFAULT = 0.5
SERVICE_RETRY_CAP_DEFAULT = 30.0
"""Seconds between a service's tries through a storage fault: doubling, capped."""


async def through_outages(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """``await call()`` until it does not raise :class:`StorageUnavailable`."""
    attempt = 0
    while True:
        try:
            result = await call()
        except StorageUnavailable as err:
            attempt += 1
            if attempt == 1:
                log.warning("%s failed, retrying with backoff: %s", what, err)
            delay = retry_delay(attempt, SERVICE_RETRY_BASE_DEFAULT, cap=SERVICE_RETRY_CAP_DEFAULT)
            await anyio.sleep(delay)
            continue
        if attempt:
            log.warning("%s succeeded again after %d tries", what, attempt + 1)
        return result
