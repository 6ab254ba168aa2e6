"""Fan-out / fan-in: ``Runtime.enqueue_chord`` stores a group of jobs and one
callback job that depends on all of them, in one transaction.

The callback waits ``blocked`` while the members run; each member's ending
counts it down in the ending's transaction (``dependency_ops``), and the
last releases it (or the first failure skips it, unless it runs on
failure). Its handler reads the members' outcomes a page at a time
(``ctx.dependency_results``, ``ctx.iter_dependency_results``): a
10,000-member group's results are never one parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Unpack

from runtime.domain.models import Job
from runtime.jobs.enqueue import PER_JOB_COLUMNS, EnqueueOptions, build_rows
from runtime.jobs.registry import JobType
from runtime.jobs.wakeups import Wakeups
from runtime.store import Store
from runtime.store.chord_ops import InsertChord
from runtime.store.ops import PARKED_COLUMNS

CHORD_MEMBERS_MAX = 100_000
"""The most members one chord may have."""


@dataclass(frozen=True, slots=True)
class Chord:
    """A stored chord: its members, in the order given, and its callback."""

    members: list[Job]
    callback: Job


class ChordMethods:
    """``Runtime.enqueue_chord``. Mixed into the Runtime."""

    clock: Any
    _wakeups: Wakeups

    if TYPE_CHECKING:  # provided by Runtime

        @property
        def store(self) -> Store: ...

        def _job_type(self, job_type: Any) -> JobType: ...

        def _announce(self, row: Mapping[str, Any]) -> None: ...

    async def enqueue_chord(
        self,
        job_type: Any,
        params: Iterable[Any],
        callback: Any,
        callback_params: Any = None,
        *,
        run_on_failure: bool = False,
        callback_options: EnqueueOptions | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> Chord:
        """Store jobs of ``job_type`` (one per item of ``params``, the options of
        ``enqueue`` shared) and a ``callback`` job that waits ``blocked`` until
        they have all ended, in one transaction. The callback runs when every
        member completed; it ends ``skipped`` as soon as one fails, is
        canceled, times out or is skipped, unless ``run_on_failure``. Its
        handler reads the members' outcomes with ``ctx.dependency_results``.
        ``callback_options`` are the callback's own (its tenant is the
        members'). See docs/workflows.md, "Fan-in (chords)"."""
        if not isinstance(run_on_failure, bool):
            raise TypeError(f"run_on_failure must be a bool, got {run_on_failure!r}")
        member_type, callback_type = self._job_type(job_type), self._job_type(callback)
        if member_type.unique:
            # An equal unfinished job would stand for a member: its dependents differ.
            raise ValueError(f"a chord's members cannot be of a unique type ({member_type.name})")
        items = params if isinstance(params, Sequence) else list(params)
        if not 0 < len(items) <= CHORD_MEMBERS_MAX:
            raise ValueError(f"a chord has 1..{CHORD_MEMBERS_MAX} members, got {len(items)}")
        own: EnqueueOptions = {**(callback_options or {})}
        if own.get("tenant_id", options.get("tenant_id")) != options.get("tenant_id"):
            raise ValueError("a chord's callback has its members' tenant")
        own["tenant_id"] = options.get("tenant_id")
        own.setdefault("user_id", options.get("user_id"))
        now = self.clock.now()
        members = build_rows(member_type, items, now=now, **options)
        (callback_row,) = build_rows(callback_type, [callback_params], now=now, **own)
        varying = (*PER_JOB_COLUMNS,)
        op = InsertChord(members, callback_row, run_on_failure, varying)
        store = self.store
        notices = None
        if store.channel is not None:
            notices = partial(_notices, self._wakeups, members)
        await store.write(op, notices)
        for row in members:
            self._announce(row)
        self._announce(callback_row)
        jobs = Job.from_similar_rows(members, (*PER_JOB_COLUMNS, *PARKED_COLUMNS))
        return Chord(jobs, Job.from_row(callback_row))


def _notices(wakeups: Wakeups, rows: list[dict[str, Any]], _result: Any) -> list[str]:
    return wakeups.for_rows(rows)
