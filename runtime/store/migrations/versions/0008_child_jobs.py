"""Child jobs and fan-in (runtime.workflows): a job's parent and spawn key,
and the count of the jobs it still waits for.

``dependencies_left`` of a job waiting ``blocked`` is set from its
dependencies as they stand, so a store upgraded with blocked jobs releases
them as before.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

_CHILD = sa.text("parent_id IS NOT NULL")
_LEFT = """
UPDATE callboard_jobs SET dependencies_left = (
    SELECT count(*) FROM callboard_job_dependencies d
    JOIN callboard_jobs o ON o.id = d.depends_on_id
    WHERE d.job_id = callboard_jobs.id
      AND o.status NOT IN ('completed', 'failed', 'canceled', 'timeout', 'skipped')
) WHERE status = 'blocked'
"""


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("callboard_jobs")}
    if "parent_id" not in present:
        op.add_column("callboard_jobs", sa.Column("parent_id", sa.Uuid(), nullable=True))
    if "spawn_key" not in present:
        op.add_column("callboard_jobs", sa.Column("spawn_key", sa.String(), nullable=True))
    if "dependencies_left" not in present:
        op.add_column("callboard_jobs", sa.Column("dependencies_left", sa.Integer(), nullable=True))
        op.execute(_LEFT)
    op.create_index(
        "ix_callboard_jobs_parent",
        "callboard_jobs",
        ["parent_id", "created_at"],
        sqlite_where=_CHILD,
        postgresql_where=_CHILD,
        if_not_exists=True,
    )
    op.create_index(
        "ux_callboard_jobs_spawn",
        "callboard_jobs",
        ["parent_id", "spawn_key"],
        unique=True,
        sqlite_where=_CHILD,
        postgresql_where=_CHILD,
        if_not_exists=True,
    )
