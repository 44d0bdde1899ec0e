"""dsr_steps.staged_to: where each read step's rows end in the request's staging file

Revision ID: core_0009
Revises: core_0012
Create Date: 2026-11-28 00:00:00.000000

Access and portability requests stage every table's rows in one file per request (it used
to be two files per table). A read step's checkpoint records the file's length after its
rows, so that a resumed worker cuts off what an uncommitted step appended and the package
step finds each table's rows without scanning.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0009"
down_revision: str | Sequence[str] | None = "core_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dsr_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staged_to", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dsr_steps", schema=None) as batch_op:
        batch_op.drop_column("staged_to")
