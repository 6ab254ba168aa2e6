"""Lock keys are each tenant's own: the holder index covers (tenant, lock key).

Also drops the indexes releases before the first one retired, which a store
that old may still have.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

_HOLDING = sa.text("lock_key IS NOT NULL AND status IN ('running', 'canceling', 'suspending')")
_OLDER_RETIRED = (
    "ix_callboard_jobs_owner",
    "ix_callboard_jobs_status",
    "ix_callboard_jobs_status_created",
    "ix_callboard_jobs_type_started",
)


def upgrade() -> None:
    for name in (*_OLDER_RETIRED, "ux_callboard_jobs_lock_holder"):
        op.drop_index(name, table_name="callboard_jobs", if_exists=True)
    op.create_index(
        "ux_callboard_jobs_tenant_lock",
        "callboard_jobs",
        [sa.text("coalesce(tenant_id, '')"), "lock_key"],
        unique=True,
        sqlite_where=_HOLDING,
        postgresql_where=_HOLDING,
        if_not_exists=True,
    )
