"""retention policies, runs, quarantine, alerts, leases, scheduler jobs

Revision ID: core_0007
Revises: core_0008
Create Date: 2026-11-27 18:22:36.031007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0007"
down_revision: str | Sequence[str] | None = "core_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("policy_name", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_alerts")),
    )
    with op.batch_alter_table("retention_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retention_alerts_kind"), ["kind"], unique=False)

    op.create_table(
        "retention_approvals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=150), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_approvals")),
    )
    with op.batch_alter_table("retention_approvals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retention_approvals_policy_name_content_hash"),
            ["policy_name", "content_hash"],
            unique=False,
        )

    op.create_table(
        "retention_leases",
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("policy_name", name=op.f("pk_retention_leases")),
    )
    op.create_table(
        "retention_policy_versions",
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "policy_name", "content_hash", name=op.f("pk_retention_policy_versions")
        ),
    )
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_rows", sa.BigInteger(), nullable=False),
        sa.Column("processed_rows", sa.BigInteger(), nullable=False),
        sa.Column("cascaded_rows", sa.BigInteger(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("last_key", sa.String(length=200), nullable=True),
        sa.Column("restore_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("triggered_by", sa.String(length=150), nullable=False),
        sa.Column("override_by", sa.String(length=150), nullable=True),
        sa.Column("override_reason", sa.String(length=500), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    with op.batch_alter_table("retention_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retention_runs_policy_name_started_at"),
            ["policy_name", "started_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_retention_runs_status"), ["status"], unique=False)

    op.create_table(
        "retention_scheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_scheduler_jobs")),
    )
    with op.batch_alter_table("retention_scheduler_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retention_scheduler_jobs_next_run_time"), ["next_run_time"], unique=False
        )

    op.create_table(
        "retention_quarantine",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.String(length=200), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["retention_runs.id"],
            name=op.f("fk_retention_quarantine_run_id_retention_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_quarantine")),
    )
    with op.batch_alter_table("retention_quarantine", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retention_quarantine_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_retention_quarantine_run_id_table_name_row_key"),
            ["run_id", "table_name", "row_key"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_retention_quarantine_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "retention_run_batches",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("lo_key", sa.String(length=200), nullable=True),
        sa.Column("hi_key", sa.String(length=200), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["retention_runs.id"],
            name=op.f("fk_retention_run_batches_run_id_retention_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_retention_run_batches")),
    )


def downgrade() -> None:
    op.drop_table("retention_run_batches")
    with op.batch_alter_table("retention_quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_quarantine_subject_id"))
        batch_op.drop_index(batch_op.f("ix_retention_quarantine_run_id_table_name_row_key"))
        batch_op.drop_index(batch_op.f("ix_retention_quarantine_expires_at"))

    op.drop_table("retention_quarantine")
    with op.batch_alter_table("retention_scheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_scheduler_jobs_next_run_time"))

    op.drop_table("retention_scheduler_jobs")
    with op.batch_alter_table("retention_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_runs_status"))
        batch_op.drop_index(batch_op.f("ix_retention_runs_policy_name_started_at"))

    op.drop_table("retention_runs")
    op.drop_table("retention_policy_versions")
    op.drop_table("retention_leases")
    with op.batch_alter_table("retention_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_approvals_policy_name_content_hash"))

    op.drop_table("retention_approvals")
    with op.batch_alter_table("retention_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_alerts_kind"))

    op.drop_table("retention_alerts")
