"""A job's trace context: the W3C ``traceparent`` (and ``tracestate``) of the
enqueue that made it, so that its attempts' spans continue that trace in
whichever process runs them (runtime.jobs.tracing). Nullable: jobs enqueued
without tracing, and every existing row, have none.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("callboard_jobs")}
    if "trace_context" not in present:
        op.add_column("callboard_jobs", sa.Column("trace_context", sa.JSON(), nullable=True))
