"""retention quarantine: no index on expires_at (purge goes through the run)

Revision ID: core_0013
Revises: core_0009
Create Date: 2026-11-27 23:30:00.000000

Every quarantined row of a run carries the run's restore_until as expires_at, so the index
held one entry per row, all alike within a run, written by every batch of every run and
read only by the purge. The purge now finds the expired runs and reaches their rows through
the (run_id, table_name, batch, row_key) index.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "core_0013"
down_revision: str | Sequence[str] | None = "core_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("retention_quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_quarantine_expires_at"))


def downgrade() -> None:
    with op.batch_alter_table("retention_quarantine", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retention_quarantine_expires_at"), ["expires_at"], unique=False
        )
