"""Columns for what users of other job systems missed: a job's description,
cancel reason, check-in time and resource figures; a schedule's queue and user.

All nullable, so existing rows need no value. A store that a pre-Alembic
build already gave some of them keeps those.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

_ADDED = {
    "callboard_jobs": (
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("cancel_reason", sa.String(), nullable=True),
        sa.Column("check_in_at", sa.Float(), nullable=True),
        sa.Column("wall_time", sa.Float(), nullable=True),
        sa.Column("cpu_time", sa.Float(), nullable=True),
        sa.Column("peak_memory", sa.Integer(), nullable=True),
    ),
    "callboard_schedules": (
        sa.Column("queue", sa.String(), nullable=True),
        sa.Column("user_id", sa.String(), nullable=True),
    ),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in _ADDED.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.name not in present:
                op.add_column(table, column)
