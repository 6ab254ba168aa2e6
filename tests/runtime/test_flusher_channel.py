"""Jobs report to the flusher over a bounded memory channel: one report per job
per flush, however often it reports; a full channel drops nothing durable."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
import trio

from runtime.domain.clock import Clock
from runtime.jobs.context import RunState
from runtime.jobs.flusher import Flusher
from runtime.store import Store

pytestmark = pytest.mark.trio


def state() -> RunState:
    return RunState(row={"id": uuid.uuid4()})


def flusher(channel: int = 8) -> Flusher:
    # Nothing here writes: the store is never touched before a flush.
    return Flusher(cast(Store, None), Clock(), "w", 0.5, 100, channel=channel)


def queued(f: Flusher) -> int:
    return int(cast(Any, f._inbox).statistics().current_buffer_used)


async def test_a_job_reporting_often_sends_one_report_per_flush() -> None:
    f = flusher()
    busy, other = state(), state()
    for _ in range(1_000):
        f.mark(busy)
    f.mark(other)
    assert queued(f) == 2
    f._take(f._inbox.receive_nowait())
    f._take(f._inbox.receive_nowait())
    assert set(f._dirty) == {busy.job_id, other.job_id}
    f.mark(busy)  # still waiting to be written: nothing new to send
    assert queued(f) == 0
    f.close()


async def test_a_full_channel_leaves_the_report_to_the_next_one() -> None:
    f = flusher(channel=2)
    a, b, c = state(), state(), state()
    for s in (a, b, c):
        f.mark(s)
    assert queued(f) == 2 and (a.queued, b.queued, c.queued) == (True, True, False)
    f._take(f._inbox.receive_nowait())
    f.mark(c)  # its next report finds room
    assert c.queued and queued(f) == 2
    f.close()


async def test_a_finished_job_s_report_is_ignored() -> None:
    f = flusher()
    s = state()
    f.mark(s)
    f.forget(s)  # its final write carries everything
    f._take(f._inbox.receive_nowait())
    f.mark(s)
    assert f._dirty == {} and queued(f) == 0
    with pytest.raises(trio.WouldBlock):
        f._inbox.receive_nowait()
    f.close()
