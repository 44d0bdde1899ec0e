"""encrypt community personal content (posts, comments, moderation notes)

Existing rows are sealed in batches (GOVERN_KEK needed when rows exist); the downgrade
decrypts them back.

Revision ID: community_0002
Revises: community_0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from govern.keys.convert import Plan, protect, unprotect

revision: str = "community_0002"
down_revision: str | Sequence[str] | None = "community_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "core_0003"

TABLES: list[tuple[str, list[Plan]]] = [
    (
        "posts",
        [
            Plan("title", "encrypt", sa.String(length=300), False),
            Plan("body", "encrypt", sa.Text(), False),
        ],
    ),
    ("comments", [Plan("body", "encrypt", sa.Text(), False)]),
    ("moderation_reports", [Plan("notes", "encrypt", sa.Text(), True)]),
]


def upgrade() -> None:
    for table, plans in TABLES:
        protect(table, "id", sa.Uuid(), plans)


def downgrade() -> None:
    for table, plans in reversed(TABLES):
        unprotect(table, "id", sa.Uuid(), plans)
