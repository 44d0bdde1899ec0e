"""retention quarantine: index by (run, table, batch, key) so a batch's keys are one range

Revision ID: core_0012
Revises: core_0007
Create Date: 2026-11-27 20:00:00.000000

A run reads back the keys of the batch it just copied (for the tombstones). With the old
index (run_id, table_name, row_key) that read scanned every row the run had quarantined
so far, which made long runs slow down batch after batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "core_0012"
down_revision: str | Sequence[str] | None = "core_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("retention_quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_quarantine_run_id_table_name_row_key"))
        batch_op.create_index(
            batch_op.f("ix_retention_quarantine_run_id_table_name_batch_row_key"),
            ["run_id", "table_name", "batch", "row_key"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("retention_quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_quarantine_run_id_table_name_batch_row_key"))
        batch_op.create_index(
            batch_op.f("ix_retention_quarantine_run_id_table_name_row_key"),
            ["run_id", "table_name", "row_key"],
            unique=False,
        )
