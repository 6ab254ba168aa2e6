"""Enqueueing multi-step jobs on the Runtime: ``rt.enqueue_steps``. Mixed
into :class:`runtime.Runtime`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from runtime.domain.clock import Clock
from runtime.domain.models import Job, JobId
from runtime.jobs.enqueue import EnqueueOptions, build_rows
from runtime.jobs.registry import Registry
from runtime.jobs.wakeups import Wakeups
from runtime.store import Store
from runtime.store.ops import InsertJobs
from runtime.workflows.step_specs import Step, step_records, steps_job_type


def steps_row(
    registry: Registry,
    steps: Sequence[Step | Mapping[str, Any]],
    step_defaults: Mapping[str, Any] | None,
    *,
    now: float,
    idempotency_key: str | None = None,
    public: bool = False,
    **options: Unpack[EnqueueOptions],
) -> dict[str, Any]:
    """The row of a new multi-step job (validated: bad input raises, no I/O)."""
    records, first = step_records(registry, steps, step_defaults, public=public)
    job_type = steps_job_type(first)
    params = {"step_defaults": dict(step_defaults or {})}
    (row,) = build_rows(job_type, [params], now=now, idempotency_keys=[idempotency_key], **options)
    row["steps"] = records
    return row


class StepMethods:
    """Requires the Runtime's registry, clock and store."""

    registry: Registry
    clock: Clock
    _wakeups: Wakeups

    if TYPE_CHECKING:  # provided by Runtime

        @property
        def store(self) -> Store: ...

        def _status_changed(self, row: Mapping[str, Any]) -> None: ...

        def _publish(self, row: Mapping[str, Any]) -> None: ...

        async def _enqueue_dependent(
            self,
            rows: list[dict[str, Any]],
            depends_on: Iterable[JobId],
            run_on_failure: bool,
            options: EnqueueOptions,
        ) -> list[Job]: ...

    async def enqueue_steps(
        self,
        steps: Sequence[Step | Mapping[str, Any]],
        *,
        step_defaults: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        depends_on: Iterable[JobId] | None = None,
        run_on_failure: bool = False,
        **options: Unpack[EnqueueOptions],
    ) -> Job:
        """Store one job that runs ``steps`` in order; durable when this returns.

        Each step is a :class:`Step` (or a mapping of its fields): a registered
        job type and its params, ``mandatory`` (default True), ``max_retries``
        and ``retry_delay`` (default: its type's). ``step_defaults`` go into
        every step's params that declare them (a step's own value wins); each
        step's params are validated against its type's model here, and bad
        input raises (:class:`InvalidParams` naming the step) storing nothing.

        The job's type is ``callboard.steps``, on its first step's queue unless
        ``queue`` says otherwise; ``options`` and ``depends_on`` as for
        :meth:`Runtime.enqueue` (the job's ``max_retries`` counts its own
        attempts, a crash's rescue among them; a step's retries never spend
        them). Its result is the list of its steps' results. See
        docs/workflows.md, "Steps".
        """
        row = steps_row(
            self.registry,
            steps,
            step_defaults,
            now=self.clock.now(),
            idempotency_key=idempotency_key,
            **options,
        )
        if depends_on is not None:
            (job,) = await self._enqueue_dependent([row], depends_on, run_on_failure, options)
            return job
        wakeups = self._wakeups
        notices = (lambda _result: wakeups.for_rows([row])) if self.store.channel else None
        replaced = await self.store.submit(InsertJobs([row]), notices).wait()
        stored = replaced.get(row["id"], row) if replaced else row
        if stored is row:
            self._status_changed(row)
            self._publish(row)
        return Job.from_row(stored)
