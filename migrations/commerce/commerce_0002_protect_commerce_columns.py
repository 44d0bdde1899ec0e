"""encrypt commerce personal columns; tokenise card numbers and bank accounts

Existing rows are sealed (or tokenised into core's token vault) in batches; GOVERN_KEK is
needed when rows exist. The downgrade decrypts and detokenises them back.

Revision ID: commerce_0002
Revises: commerce_0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from govern.keys.convert import Plan, protect, unprotect

revision: str = "commerce_0002"
down_revision: str | Sequence[str] | None = "commerce_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "core_0003"

MONEY = sa.Numeric(precision=12, scale=2)
TABLES: list[tuple[str, list[Plan]]] = [
    (
        "orders",
        [
            Plan("total_amount", "encrypt", MONEY, False, codec="decimal"),
            Plan("shipping_address", "encrypt", sa.JSON(), True, codec="json"),
        ],
    ),
    (
        "payments",
        [
            Plan("card_number", "token", sa.String(length=64), True, vault_kind="card_number"),
            Plan("card_holder", "encrypt", sa.String(length=200), True),
            Plan("bank_account", "token", sa.String(length=64), True, vault_kind="bank_account"),
        ],
    ),
    (
        "invoices",
        [
            Plan("billing_name", "encrypt", sa.String(length=200), False),
            Plan("billing_address", "encrypt", sa.JSON(), False, codec="json"),
            Plan("vat_id", "encrypt", sa.String(length=32), True),
        ],
    ),
    ("refunds", [Plan("reason", "encrypt", sa.String(length=500), True)]),
    ("wallets", [Plan("balance", "encrypt", MONEY, False, codec="decimal")]),
]


def upgrade() -> None:
    for table, plans in TABLES:
        protect(table, "id", sa.Uuid(), plans)


def downgrade() -> None:
    for table, plans in reversed(TABLES):
        unprotect(table, "id", sa.Uuid(), plans)
