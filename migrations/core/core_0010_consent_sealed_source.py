"""consent ledger: source IP and user agent sealed with the subject's shredding key

Revision ID: core_0010
Revises: core_0005
Create Date: 2026-11-27

``consent_records`` gains ``subject_id`` (the owner of the key that seals the record's
``source_ip`` and ``user_agent``, two envelope columns); ``consent_chain_heads`` gains
``subject_id`` (a chain's key owner, fixed once set). Existing records have neither, and
their hashes are unchanged: the hash's ``sealed_digest`` slot is null for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0010"
down_revision: str | Sequence[str] | None = "core_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("consent_records", sa.Column("subject_id", sa.Uuid(), nullable=True))
    op.add_column("consent_records", sa.Column("source_ip", sa.LargeBinary(), nullable=True))
    op.add_column("consent_records", sa.Column("user_agent", sa.LargeBinary(), nullable=True))
    op.add_column("consent_chain_heads", sa.Column("subject_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    # Records whose hash covers sealed bytes would no longer verify without them: refuse
    # rather than silently break the ledger's proof.
    sealed = op.get_bind().execute(
        sa.text(
            "SELECT count(*) FROM consent_records "
            "WHERE source_ip IS NOT NULL OR user_agent IS NOT NULL"
        )
    )
    if sealed.scalar_one():
        raise RuntimeError(
            "consent_records holds sealed source IPs or user agents that their hashes cover; "
            "downgrading past core_0010 would make those chains unverifiable"
        )
    op.drop_column("consent_chain_heads", "subject_id")
    op.drop_column("consent_records", "user_agent")
    op.drop_column("consent_records", "source_ip")
    op.drop_column("consent_records", "subject_id")
