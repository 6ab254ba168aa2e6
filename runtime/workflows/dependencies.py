"""Enqueueing with ``depends_on``: the checks, and the write that stores the
jobs with their dependencies (the store settles them: ``dependency_ops``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from runtime.domain.errors import JobNotFound
from runtime.domain.models import JobId
from runtime.store.dependency_ops import InsertDependentJobs

DEPENDENCIES_MAX = 100
"""The most jobs one job may depend on."""


def dependency_ids(depends_on: Iterable[JobId]) -> list[uuid.UUID]:
    """The ids ``depends_on`` names, each once, in order; :class:`JobNotFound`
    for text that is no job id, ``ValueError`` for none or too many."""
    if isinstance(depends_on, str | uuid.UUID):
        raise TypeError("depends_on must be a list of job ids, not a single id")
    ids: dict[uuid.UUID, None] = {}
    for item in depends_on:
        if isinstance(item, uuid.UUID):
            ids[item] = None
            continue
        try:
            ids[uuid.UUID(str(item))] = None
        except ValueError:
            raise JobNotFound(item) from None
    if not ids:
        raise ValueError("depends_on must name at least one job")
    if len(ids) > DEPENDENCIES_MAX:
        raise ValueError(f"a job may depend on at most {DEPENDENCIES_MAX} jobs, got {len(ids)}")
    return list(ids)


def insert_dependent(
    rows: list[dict[str, Any]],
    depends_on: list[uuid.UUID],
    run_on_failure: object,
    tenant_id: str | None,
) -> InsertDependentJobs:
    """The write that stores ``rows`` depending on ``depends_on``."""
    if not isinstance(run_on_failure, bool):
        raise TypeError(f"run_on_failure must be a bool, got {run_on_failure!r}")
    for row in rows:
        if row["unique_key"] is not None:
            # A unique type's index covers the statuses a job may run from, not
            # blocked: two equal blocked jobs would both be stored, and both run.
            raise ValueError(
                f"depends_on cannot be used with a unique job type ({row['type']}): "
                "its uniqueness does not cover blocked jobs"
            )
    return InsertDependentJobs(rows, depends_on, run_on_failure, tenant_id)
