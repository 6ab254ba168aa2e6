"""The steps of a multi-step job (``runtime.workflows.steps``): each step's
status and record, as the store keeps them and as :class:`runtime.Job` shows them.

::

    pending --started--> running --returned--> completed
                           |   `--raised, tries left--> retrying --due--> running
                           |   `--raised, none left--> failed (mandatory: the job fails,
                           |                                    the later steps are skipped)
                           |   `--the job is suspended--> suspended --resumed--> running
                           `--the job is canceled or ends otherwise--> canceled
    pending --an earlier mandatory step failed, or Skip--> skipped
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

STEPS_TYPE = "callboard.steps"
"""The ``type`` of every multi-step job: its steps name their own types."""


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"  # failed, waits for its next try
    SUSPENDED = "suspended"  # the job was suspended in it
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELED = "canceled"

    @property
    def is_done(self) -> bool:
        """Ended for good: a resumed or rescued job never runs it again."""
        return self in STEP_DONE


STEP_DONE = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED})


class JobStep(BaseModel):
    """One step of a multi-step job as the store had it when it was read."""

    model_config = ConfigDict(frozen=True)

    type: str
    params: dict[str, Any] = {}
    mandatory: bool = True
    max_retries: int = 0
    retry_delay: float = 0.0
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    progress: float = 0.0
    error: str | None = None
    result: Any = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


_STEP_TIMES = ("started_at", "finished_at")


def steps_from_records(records: Sequence[Mapping[str, Any]]) -> list[JobStep]:
    """The snapshots of stored step records (times are epoch seconds there)."""
    steps = []
    for record in records:
        values = {name: record[name] for name in JobStep.model_fields if name in record}
        for name in _STEP_TIMES:
            epoch = values.get(name)
            if epoch is not None:
                values[name] = datetime.fromtimestamp(epoch, UTC)
        values["status"] = StepStatus(values.get("status", StepStatus.PENDING))
        steps.append(JobStep.model_construct(**values))
    return steps


def retried_records(steps: Sequence[JobStep]) -> list[dict[str, Any]]:
    """The step records of a multi-step job a manual retry runs again: its
    completed steps stay as they are (with their results), every other step
    starts afresh."""
    records = []
    for step in steps:
        record = step.model_dump(mode="json")
        for name in _STEP_TIMES:
            moment = getattr(step, name)
            record[name] = None if moment is None else moment.timestamp()
        if step.status is not StepStatus.COMPLETED:
            record.update(
                status=StepStatus.PENDING.value,
                attempts=0,
                progress=0.0,
                error=None,
                result=None,
                started_at=None,
                finished_at=None,
            )
        records.append(record)
    return records
