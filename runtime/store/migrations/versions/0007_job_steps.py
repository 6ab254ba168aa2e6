"""Multi-step jobs (runtime.workflows.steps): each job's steps and their records.

``steps`` is nullable JSON: existing rows are single-step jobs, NULL.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("callboard_jobs")}
    if "steps" not in present:
        op.add_column("callboard_jobs", sa.Column("steps", sa.JSON(), nullable=True))
