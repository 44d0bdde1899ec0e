"""outbox transaction ids: the relay reads behind the oldest open writer

``event_outbox.txid`` (the writing transaction's id on PostgreSQL, 0 on SQLite) and
``event_sinks.position_txid``: sinks now take events in ``(txid, id)`` order, so that event
writers no longer serialise on one advisory lock. Existing events were written under that
lock, in id order, so they all get ``txid = 0``, as do existing positions: the old order
is kept exactly.

Downgrade: positions become plain ids again. A sink is set just below the smallest id it
has not taken yet (it may re-send some events, never skip one).

Revision ID: core_0011
Revises: core_0010
Create Date: 2026-11-28 09:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0011"
down_revision: str | Sequence[str] | None = "core_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("txid", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_event_outbox_txid_id"), ["txid", "id"], unique=False)
    with op.batch_alter_table("event_sinks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("position_txid", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    # Rewind each sink to just below the first event (by id) it has not taken.
    op.execute(
        """
        UPDATE event_sinks SET position = COALESCE(
            (SELECT MIN(o.id) - 1 FROM event_outbox o
             WHERE o.txid > event_sinks.position_txid
                OR (o.txid = event_sinks.position_txid AND o.id > event_sinks.position)),
            (SELECT MAX(o.id) FROM event_outbox o),
            event_sinks.position)
        """
    )
    with op.batch_alter_table("event_sinks", schema=None) as batch_op:
        batch_op.drop_column("position_txid")
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_outbox_txid_id"))
        batch_op.drop_column("txid")
