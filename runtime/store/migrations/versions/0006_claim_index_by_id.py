"""The claim's index ends with the id: jobs enqueued together start in the
order they were given, without a sort (``ix_callboard_jobs_claim`` becomes
``ix_callboard_jobs_claim_v2``).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

_WAITING = sa.text("status = 'waiting'")


def upgrade() -> None:
    op.create_index(
        "ix_callboard_jobs_claim_v2",
        "callboard_jobs",
        [
            "queue",
            sa.text("priority DESC"),
            "scheduled_at",
            "created_at",
            "id",
        ],
        sqlite_where=_WAITING,
        postgresql_where=_WAITING,
        if_not_exists=True,
    )
    op.drop_index("ix_callboard_jobs_claim", table_name="callboard_jobs", if_exists=True)
