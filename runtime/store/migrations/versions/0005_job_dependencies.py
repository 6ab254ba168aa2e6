"""Dependencies between jobs (runtime.workflows): the table of dependencies and
the flag on a job that something depends on.

``has_dependents`` is NOT NULL: existing rows get false, which they are.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "callboard_job_dependencies" not in inspector.get_table_names():
        op.create_table(
            "callboard_job_dependencies",
            sa.Column("job_id", sa.Uuid(), nullable=False),
            sa.Column("depends_on_id", sa.Uuid(), nullable=False),
            sa.Column("run_on_failure", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("job_id", "depends_on_id"),
        )
        op.create_index(
            "ix_callboard_job_dependencies_depends_on_id",
            "callboard_job_dependencies",
            ["depends_on_id"],
            unique=False,
        )
    present = {c["name"] for c in inspector.get_columns("callboard_jobs")}
    if "has_dependents" not in present:
        op.add_column(
            "callboard_jobs",
            sa.Column("has_dependents", sa.Boolean(), nullable=False, server_default=sa.false()),
        )
