"""What wakes what across processes: the notices a runtime's writes send.

In one process a committed change wakes its queues and timers directly
(``Runtime._status_changed``). On PostgreSQL the same change also goes to
every other runtime on the store as a notice (``runtime.store.notifier``),
sent in the write's transaction:

| write | notice |
| --- | --- |
| enqueue of due jobs; retry, resume, promotion to ``waiting`` | wake the job's queue |
| enqueue of a delayed job | its due time, for the due timers |
| end of a job of a limited type | wake its queue and its type's queue |
| end of a job holding a lock key | wake its queue and the queues of the jobs let wait |
| rescue of a lost job | wake its queue (its due time, for a released dependent due later) |
| end of a job others wait for | the notices of the jobs it released (dependents, a parent) |
| cancel or suspend of a running job | tell its job id to stop |

Other ends of jobs of unlimited types send nothing: only their own runtime
had a slot to refill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from runtime.domain.status import JobStatus
from runtime.store.notifier import Notices
from runtime.store.ops import FinishResult

Row = Mapping[str, Any]
_WAITING = JobStatus.WAITING.value
_SCHEDULED = JobStatus.SCHEDULED.value
_BLOCKED = JobStatus.BLOCKED.value
_STOPS = {JobStatus.CANCELING.value: "cancel", JobStatus.SUSPENDING.value: "suspend"}


class Wakeups:
    """The notices of one runtime (signed with its ``sender`` token)."""

    def __init__(self, sender: str) -> None:
        self.notices = Notices(sender)
        self.sender = sender

    def for_rows(self, rows: Iterable[Row]) -> list[str]:
        """The notices of jobs as stored after a change: queues to wake, the
        earliest due time, jobs to stop."""
        queues: dict[str, None] = {}
        due: float | None = None
        out: list[str] = []
        for row in rows:
            status = row["status"]
            if status == _WAITING:
                queues[row["queue"]] = None
            elif status == _SCHEDULED:
                at = row["scheduled_at"]
                due = at if due is None or at < due else due
            elif status in _STOPS:
                out.append(self.notices.control(row["id"], _STOPS[status]))
        out.extend(self.notices.wake(q) for q in queues)
        if due is not None:
            out.append(self.notices.due(due))
        return out

    def for_row(self, row: Row) -> list[str]:
        """For a write returning one job row (a transition)."""
        return self.for_rows([row])

    def for_promote(self, result: tuple[list[Row], float | None]) -> list[str]:
        return self.for_rows(result[0])

    def for_rescue(self, rescued: Iterable[Any]) -> list[str]:
        """For ``Rescue``'s list of ``Rescued`` (jobs to run again or let wait)."""
        queues = {r.queue for r in rescued if r.status is JobStatus.WAITING}
        out = [self.notices.wake(q) for q in sorted(queues)]
        due = [r.row["scheduled_at"] for r in rescued if r.status is JobStatus.SCHEDULED and r.row]
        if due:  # dependents released by a rescued job's ending, due later
            out.append(self.notices.due(min(due)))
        return out

    def for_finish(
        self, queue: str, status: str, limited_queue: str | None, lock_key: str | None
    ) -> Callable[[FinishResult | None], list[str]]:
        """For the end of a run on ``queue`` that left the job ``status``: a freed
        slot of a limited type, an immediate retry, the jobs its lock let wait,
        and the jobs its ending released (dependents, a parent whose last child
        it was, or the job itself when its children ended while it ran)."""
        static: list[str] = []
        if limited_queue is not None:  # a slot of its type is free
            static.extend(dict.fromkeys(self.notices.wake(q) for q in (queue, limited_queue)))
        elif status == _WAITING:
            static.append(self.notices.wake(queue))
        if lock_key is not None:
            # Jobs of its key that a concurrent claim left waiting rather than parked
            # (runtime.store.claim, Claim._park_on_locks) are in its queue, as a rule.
            static = list(dict.fromkeys([*static, self.notices.wake(queue)]))

        def notices(result: FinishResult | None) -> list[str]:
            if result is None:
                return static
            out = static + self.for_rows([*result.released, *result.dependents])
            if status == _BLOCKED and result.values.get("status") == _WAITING:
                out.append(self.notices.wake(queue))
            return out

        return notices
