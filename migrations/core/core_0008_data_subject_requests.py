"""data subject requests

Revision ID: core_0008
Revises: core_0011
Create Date: 2026-11-27 18:17:41.311131
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0008"
down_revision: str | Sequence[str] | None = "core_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dsr_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("assigned_to", sa.String(length=150), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("code_hash", sa.String(length=128), nullable=True),
        sa.Column("code_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("code_attempts", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_by", sa.String(length=150), nullable=True),
        sa.Column("corrections", sa.LargeBinary(), nullable=False),
        sa.Column("claimed_by", sa.String(length=150), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("notified", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_dsr_requests_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dsr_requests")),
    )
    with op.batch_alter_table("dsr_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dsr_requests_state_due_at"), ["state", "due_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dsr_requests_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "dsr_exports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "size_bytes", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("tables", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["dsr_requests.id"],
            name=op.f("fk_dsr_exports_request_id_dsr_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dsr_exports")),
    )
    with op.batch_alter_table("dsr_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dsr_exports_request_id"), ["request_id"], unique=False)

    op.create_table(
        "dsr_identifiers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["dsr_requests.id"],
            name=op.f("fk_dsr_identifiers_request_id_dsr_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dsr_identifiers")),
    )
    with op.batch_alter_table("dsr_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dsr_identifiers_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "dsr_restrictions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("table_name", sa.String(length=128), nullable=True),
        sa.Column("basis", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["dsr_requests.id"],
            name=op.f("fk_dsr_restrictions_request_id_dsr_requests"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_dsr_restrictions_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dsr_restrictions")),
    )
    with op.batch_alter_table("dsr_restrictions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dsr_restrictions_subject_id_lifted_at"),
            ["subject_id", "lifted_at"],
            unique=False,
        )

    op.create_table(
        "dsr_steps",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=128), nullable=True),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("planned_rows", sa.Integer(), nullable=False),
        sa.Column("exception", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows_affected", sa.Integer(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=150), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["dsr_requests.id"],
            name=op.f("fk_dsr_steps_request_id_dsr_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dsr_steps")),
    )
    with op.batch_alter_table("dsr_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dsr_steps_request_id_seq"), ["request_id", "seq"], unique=True
        )

    op.create_table(
        "dsr_transitions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=150), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["dsr_requests.id"],
            name=op.f("fk_dsr_transitions_request_id_dsr_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dsr_transitions")),
    )
    with op.batch_alter_table("dsr_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dsr_transitions_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dsr_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dsr_transitions_request_id"))

    op.drop_table("dsr_transitions")
    with op.batch_alter_table("dsr_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dsr_steps_request_id_seq"))

    op.drop_table("dsr_steps")
    with op.batch_alter_table("dsr_restrictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dsr_restrictions_subject_id_lifted_at"))

    op.drop_table("dsr_restrictions")
    with op.batch_alter_table("dsr_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dsr_identifiers_request_id"))

    op.drop_table("dsr_identifiers")
    with op.batch_alter_table("dsr_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dsr_exports_request_id"))

    op.drop_table("dsr_exports")
    with op.batch_alter_table("dsr_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dsr_requests_subject_id"))
        batch_op.drop_index(batch_op.f("ix_dsr_requests_state_due_at"))

    op.drop_table("dsr_requests")
