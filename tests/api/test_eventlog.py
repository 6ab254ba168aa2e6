from __future__ import annotations

import uuid

from runtime.api.eventlog import EventLog
from runtime.domain.models import JobEvent
from runtime.domain.status import JobStatus


def event(n: int) -> JobEvent:
    return JobEvent(
        job_id=uuid.uuid4(), kind="status", status=JobStatus.WAITING, at=None, revision=n
    )


def test_event_log_keeps_the_last_events_and_knows_when_a_position_is_lost() -> None:
    log = EventLog(size=3)
    assert log.after(0) == []
    for n in range(1, 6):
        assert log.append(event(n)) == n
    assert [e.seq for e in log.after(2) or []] == [3, 4, 5]
    assert log.after(1) is None  # event 2 is gone: a gap
    assert log.after(9) is None  # a position from the future (another process)
    assert log.after(5) == []
    assert log.parse_id(log.format_id(4)) == 4
    assert log.parse_id("other-4") is None and log.parse_id("garbage") is None
    assert log.parse_id(f"{log.epoch}-{'9' * 40}") is None
