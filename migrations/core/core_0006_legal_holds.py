"""legal holds

Revision ID: core_0006
Revises: core_0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0006"
down_revision: str | Sequence[str] | None = "core_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_ref", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=150), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=150), nullable=True),
        sa.Column("release_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_holds_case_ref"), ["case_ref"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_legal_holds_released_at"), ["released_at"], unique=False
        )

    op.create_table(
        "legal_hold_subjects",
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hold_id"],
            ["legal_holds.id"],
            name=op.f("fk_legal_hold_subjects_hold_id_legal_holds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_legal_hold_subjects_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("hold_id", "subject_id", name=op.f("pk_legal_hold_subjects")),
    )
    with op.batch_alter_table("legal_hold_subjects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_legal_hold_subjects_subject_id"), ["subject_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("legal_hold_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_hold_subjects_subject_id"))

    op.drop_table("legal_hold_subjects")
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_holds_released_at"))
        batch_op.drop_index(batch_op.f("ix_legal_holds_case_ref"))

    op.drop_table("legal_holds")
