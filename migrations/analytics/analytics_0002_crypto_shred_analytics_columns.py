"""crypto-shred analytics personal columns under per-subject keys

Existing rows are sealed under their subject's key (rows without a subject under the
primary data key); GOVERN_KEK is needed when rows exist. The downgrade decrypts them back;
values whose subject key was already shredded come back empty.

Revision ID: analytics_0002
Revises: analytics_0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from govern.keys.convert import Plan, protect, unprotect

revision: str = "analytics_0002"
down_revision: str | Sequence[str] | None = "analytics_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "core_0003"

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES: list[tuple[str, sa.types.TypeEngine[object], list[Plan]]] = [
    (
        "analytics_sessions",
        sa.Uuid(),
        [
            Plan("ip_address", "shred", sa.String(length=64), True),
            Plan("user_agent", "shred", sa.String(length=512), True),
            Plan("device_id", "shred", sa.String(length=128), True),
        ],
    ),
    ("analytics_events", BIG_ID, [Plan("properties", "shred", sa.JSON(), False, codec="json")]),
    (
        "page_views",
        BIG_ID,
        [
            Plan("url", "shred", sa.String(length=2048), False),
            Plan("referrer", "shred", sa.String(length=2048), True),
        ],
    ),
]


def upgrade() -> None:
    for table, pk_type, plans in TABLES:
        protect(table, "id", pk_type, plans, subject="subject_id")


def downgrade() -> None:
    for table, pk_type, plans in reversed(TABLES):
        unprotect(table, "id", pk_type, plans)
