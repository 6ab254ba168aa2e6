"""Baseline: the schema of the first release (commit b295512).

Generated from that commit's tables with Alembic's autogenerate, plus the two
expression indexes autogenerate cannot see. A store made before Alembic
(no version table) is stamped with this revision, then upgraded.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

_UNIQUE = sa.text(
    "unique_key IS NOT NULL AND status IN ('scheduled', 'waiting', 'locked', 'running', "
    "'canceling', 'suspending', 'suspended', 'resuming')"
)


def upgrade() -> None:
    op.create_table(
        "callboard_job_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_callboard_job_logs_job_id"), "callboard_job_logs", ["job_id"], unique=False
    )
    op.create_table(
        "callboard_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("group", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("traceback", sa.String(), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("progress_details", sa.JSON(), nullable=True),
        sa.Column("eta", sa.Float(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("retry_delay", sa.Float(), nullable=False),
        sa.Column("timeout", sa.Float(), nullable=True),
        sa.Column("scheduled_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("worker_id", sa.String(), nullable=True),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("tenant_id", sa.String(), nullable=True),
        sa.Column("user_id", sa.String(), nullable=True),
        sa.Column("checkpoint", sa.JSON(), nullable=True),
        sa.Column("checkpoint_at", sa.Float(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("check_in", sa.String(), nullable=True),
        sa.Column("status_hook", sa.String(), nullable=True),
        sa.Column("lock_key", sa.String(), nullable=True),
        sa.Column("locked_by", sa.String(), nullable=True),
        sa.Column("unique_key", sa.String(), nullable=True),
        sa.Column("resumed", sa.Boolean(), nullable=False),
        sa.Column("checkpoint_version", sa.Integer(), nullable=True),
        sa.Column("schedule_id", sa.String(), nullable=True),
        sa.Column("slot", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_callboard_jobs_by_status",
        "callboard_jobs",
        ["status", "created_at", "queue"],
        unique=False,
    )
    op.create_index(
        "ix_callboard_jobs_claim",
        "callboard_jobs",
        ["queue", sa.literal_column("priority DESC"), "scheduled_at", "created_at"],
        unique=False,
        sqlite_where=sa.text("status = 'waiting'"),
        postgresql_where=sa.text("status = 'waiting'"),
    )
    op.create_index("ix_callboard_jobs_created", "callboard_jobs", ["created_at"], unique=False)
    op.create_index(
        "ix_callboard_jobs_due",
        "callboard_jobs",
        ["scheduled_at"],
        unique=False,
        sqlite_where=sa.text("status = 'scheduled'"),
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_index(
        "ix_callboard_jobs_finished",
        "callboard_jobs",
        ["status", "finished_at"],
        unique=False,
        sqlite_where=sa.text("finished_at IS NOT NULL"),
        postgresql_where=sa.text("finished_at IS NOT NULL"),
    )
    op.create_index(
        "ix_callboard_jobs_lock",
        "callboard_jobs",
        ["lock_key"],
        unique=False,
        sqlite_where=sa.text("lock_key IS NOT NULL"),
        postgresql_where=sa.text("lock_key IS NOT NULL"),
    )
    op.create_index(
        "ux_callboard_jobs_lock_holder",
        "callboard_jobs",
        ["lock_key"],
        unique=True,
        sqlite_where=sa.text(
            "lock_key IS NOT NULL AND status IN ('running', 'canceling', 'suspending')"
        ),
        postgresql_where=sa.text(
            "lock_key IS NOT NULL AND status IN ('running', 'canceling', 'suspending')"
        ),
    )
    op.create_index(
        "ux_callboard_jobs_idempotency",
        "callboard_jobs",
        [sa.text("coalesce(tenant_id, '')"), "idempotency_key"],
        unique=True,
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_index(
        "ux_callboard_jobs_schedule_slot",
        "callboard_jobs",
        ["schedule_id", "slot"],
        unique=True,
        sqlite_where=sa.text("schedule_id IS NOT NULL"),
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    )
    op.create_index(
        "ux_callboard_jobs_unique",
        "callboard_jobs",
        ["unique_key"],
        unique=True,
        sqlite_where=_UNIQUE,
        postgresql_where=_UNIQUE,
    )
    op.create_table(
        "callboard_queues",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "callboard_schedules",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("job_type", sa.String(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("tz", sa.String(), nullable=False),
        sa.Column("overlap", sa.String(), nullable=False),
        sa.Column("misfire", sa.String(), nullable=False),
        sa.Column("max_catch_up", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("last_fire_at", sa.Float(), nullable=True),
        sa.Column("next_fire_at", sa.Float(), nullable=True),
        sa.Column("last_job_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("tenant_id", sa.String(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_callboard_schedules_name",
        "callboard_schedules",
        [sa.text("coalesce(tenant_id, '')"), "name"],
        unique=True,
    )
    op.create_index(
        "ix_callboard_schedules_updated", "callboard_schedules", ["updated_at"], unique=False
    )
    op.create_table(
        "callboard_type_starts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_callboard_type_starts", "callboard_type_starts", ["type", "started_at"], unique=False
    )
    op.create_table(
        "callboard_workers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("hostname", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
