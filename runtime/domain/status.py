"""Job statuses and the one table of legal transitions.

::

    scheduled --due--> waiting --claimed--> running --> completed | failed | timeout | skipped
       ^                 |  ^                  |  `--cancel--> canceling --> canceled
       |                 v  |                  |  `--suspend-> suspending --> suspended
       |              locked                   |                                |
       |                                       |             resume -> resuming -> waiting
       `------ retry with backoff <------------'

    blocked --its dependencies completed--> waiting (or scheduled, locked)
       `--a dependency failed, was canceled, timed out or was skipped--> skipped
    running --waits for its children (ctx.wait_children)--> blocked --they ended--> waiting

Every status change in the store is a compare-and-set against this table
(``UPDATE ... WHERE status IN (allowed sources)``), so racing requests cannot
both win. Terminal statuses never change on their own; only a manual
``rt.retry()`` re-queues a failed, timed-out or canceled job.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    WAITING = "waiting"
    LOCKED = "locked"
    BLOCKED = "blocked"  # waits for the jobs it depends on (runtime.workflows)
    RUNNING = "running"
    CANCELING = "canceling"
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"
    RESUMING = "resuming"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_active(self) -> bool:
        """Claimed by a worker: its handler runs or is unwinding."""
        return self in ACTIVE


S = JobStatus

TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELED, S.TIMEOUT, S.SKIPPED})
ACTIVE = frozenset({S.RUNNING, S.CANCELING, S.SUSPENDING})
PENDING = frozenset({S.SCHEDULED, S.WAITING, S.LOCKED})

# Where each status may go next. A running job may come back to waiting
# (interrupted by shutdown, or rescued after its worker died) and to
# scheduled (a retry after backoff). A job asked to stop may still end on its
# own first (complete, fail, retry) if the request lands after its last await.
# A parent that waits for its children gives its slot back: it ends its run
# ``blocked`` (runtime.workflows.children).
_ENDINGS = frozenset(
    {S.COMPLETED, S.FAILED, S.TIMEOUT, S.SKIPPED, S.SCHEDULED, S.WAITING, S.BLOCKED}
)

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.SCHEDULED: frozenset({S.WAITING, S.CANCELED, S.SUSPENDED}),
    # Released only by its dependencies' endings (never suspended: nothing to pause).
    S.BLOCKED: frozenset({S.WAITING, S.SCHEDULED, S.LOCKED, S.SKIPPED, S.CANCELED}),
    S.WAITING: frozenset({S.RUNNING, S.LOCKED, S.SCHEDULED, S.CANCELED, S.SUSPENDED}),
    S.LOCKED: frozenset({S.WAITING, S.RUNNING, S.CANCELED, S.SUSPENDED}),
    S.RUNNING: _ENDINGS | {S.CANCELING, S.SUSPENDING},
    S.CANCELING: _ENDINGS | {S.CANCELED},
    S.SUSPENDING: _ENDINGS | {S.SUSPENDED, S.CANCELING},
    S.SUSPENDED: frozenset({S.RESUMING, S.CANCELED}),
    S.RESUMING: frozenset({S.WAITING, S.SUSPENDED, S.CANCELED}),
    S.COMPLETED: frozenset(),
    S.SKIPPED: frozenset(),
    # Only an explicit rt.retry() re-queues these, as the next attempt.
    S.FAILED: frozenset({S.WAITING}),
    S.CANCELED: frozenset({S.WAITING}),
    S.TIMEOUT: frozenset({S.WAITING}),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """The statuses from which ``target`` may be reached: the CAS guard."""
    return frozenset(s for s, nexts in TRANSITIONS.items() if target in nexts)


# Names other job systems use, accepted by status filters: atlasOS's
# "pending" (not started yet) and the British "cancelled".
STATUS_ALIASES: dict[str, tuple[JobStatus, ...]] = {
    "pending": (S.SCHEDULED, S.WAITING, S.LOCKED, S.BLOCKED),
    "cancelled": (S.CANCELED,),
}


def filter_statuses(names: list[str]) -> list[str]:
    """The status values a filter names, aliases expanded, in order and once each;
    ``ValueError`` naming the unknown ones and the known names and aliases."""
    known = {s.value for s in JobStatus}
    out: dict[str, None] = {}
    unknown = []
    for name in names:
        if name in known:
            out[name] = None
        elif name in STATUS_ALIASES:
            out.update(dict.fromkeys(s.value for s in STATUS_ALIASES[name]))
        else:
            unknown.append(name)
    if unknown or not out:
        aliases = ", ".join(
            f"{alias} ({'/'.join(STATUS_ALIASES[alias])})" for alias in STATUS_ALIASES
        )
        raise ValueError(
            f"unknown status {', '.join(repr(n) for n in unknown) or repr(names)}; "
            f"known: {', '.join(s.value for s in JobStatus)}; aliases: {aliases}"
        )
    return list(out)
