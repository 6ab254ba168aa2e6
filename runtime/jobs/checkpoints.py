"""Checkpoint versions: a checkpoint written by an older job type is upgraded
(or refused) before a handler sees it."""

from __future__ import annotations

from typing import Any

from runtime.domain.errors import Fail
from runtime.jobs.registry import JobType


def upgraded_state(job_type: JobType, state: Any, version: int | None) -> Any:
    """The checkpoint state as ``job_type``'s current version expects it.

    Raises :class:`Fail` when it cannot be made so: the job must not run on
    state it does not understand.
    """
    if state is None:
        return None
    written = version or 1
    if written == job_type.version:
        return state
    if written > job_type.version:
        raise Fail(
            f"checkpoint version {written} is newer than job type "
            f"{job_type.name!r} version {job_type.version}"
        )
    if job_type.upgrade is None:
        raise Fail(
            f"checkpoint version {written} is older than job type {job_type.name!r} "
            f"version {job_type.version}, which has no upgrade()"
        )
    try:
        return job_type.upgrade(written, state)
    except Exception as err:
        raise Fail(
            f"cannot upgrade the checkpoint of job type {job_type.name!r} from version "
            f"{written} to {job_type.version}: {type(err).__name__}: {err}"
        ) from err
