"""Each live worker records the queues it serves, so that jobs waiting on a
queue no live worker serves can be told of.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("callboard_workers")}
    if "queues" not in present:
        op.add_column("callboard_workers", sa.Column("queues", sa.JSON(), nullable=True))
