"""dsr_requests: index (state, due_at, id) so that a claim reads one index entry

Revision ID: core_0014
Revises: core_0013
Create Date: 2026-11-28 02:00:00.000000

A worker claims the approved request due first, ties broken by id. With (state, due_at)
alone the claim sorted every approved request to find it (SQLite: a temporary B-tree per
claim, so the queue slowed down as it grew); with id in the index the first entry of the
state is the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "core_0014"
down_revision: str | Sequence[str] | None = "core_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dsr_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dsr_requests_state_due_at"))
        batch_op.create_index(
            batch_op.f("ix_dsr_requests_state_due_at_id"), ["state", "due_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dsr_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dsr_requests_state_due_at_id"))
        batch_op.create_index(
            batch_op.f("ix_dsr_requests_state_due_at"), ["state", "due_at"], unique=False
        )
