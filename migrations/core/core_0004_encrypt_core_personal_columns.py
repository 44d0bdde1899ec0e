"""encrypt core personal columns, with blind indexes for lookups

Existing rows are sealed in batches (GOVERN_KEK needed when rows exist); the downgrade
decrypts them back.

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from govern.keys.convert import Blind, Plan, offline_sqlite, protect, unprotect

revision: str = "core_0004"
down_revision: str | Sequence[str] | None = "core_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBJECTS = [
    Plan("external_ref", "encrypt", sa.String(length=128), False),
    Plan("email", "encrypt", sa.String(length=320), True),
    Plan("phone", "encrypt", sa.String(length=64), True),
    Plan("given_name", "encrypt", sa.String(length=200), True),
    Plan("family_name", "encrypt", sa.String(length=200), True),
    Plan("birth_date", "encrypt", sa.Date(), True, codec="date"),
    Plan("country", "encrypt", sa.String(length=2), True),
]
SUBJECT_BLINDS = [
    Blind("external_ref_index", "external_ref", 128, nullable=False),
    Blind("email_index", "email", 32, nullable=True, casefold=True),
]
IDENTITIES = [Plan("external_id", "encrypt", sa.String(length=255), False)]
IDENTITY_BLINDS = [Blind("external_id_index", "external_id", 128, nullable=False)]
ACCOUNTS = [
    Plan("username", "encrypt", sa.String(length=150), False),
    Plan("password_hash", "encrypt", sa.String(length=255), False),
]
ACCOUNT_BLINDS = [Blind("username_index", "username", 128, nullable=False)]


def _batch(table: str) -> Any:
    """Constraint changes; offline SQLite renders them as a note (they need a rebuild)."""
    if offline_sqlite():
        op.execute(f"-- govern: constraints of {table} change in a rebuild; run online")
        return contextlib.nullcontext(_Ignore())
    return op.batch_alter_table(table)


class _Ignore:
    def __getattr__(self, _name: str) -> Any:
        return lambda *a, **k: None


def upgrade() -> None:
    with _batch("subjects") as batch_op:
        batch_op.drop_constraint("uq_subjects_external_ref", type_="unique")
    protect("subjects", "id", sa.Uuid(), SUBJECTS, SUBJECT_BLINDS)
    with _batch("subjects") as batch_op:
        batch_op.create_unique_constraint("uq_subjects_external_ref_index", ["external_ref_index"])
        batch_op.create_index("ix_subjects_email_index", ["email_index"], unique=False)

    with _batch("subject_identities") as batch_op:
        batch_op.drop_index("ix_subject_identities_provider_external_id")
    protect("subject_identities", "id", sa.Uuid(), IDENTITIES, IDENTITY_BLINDS)
    with _batch("subject_identities") as batch_op:
        batch_op.create_index(
            "ix_subject_identities_provider_external_id_index",
            ["provider", "external_id_index"],
            unique=True,
        )

    with _batch("accounts") as batch_op:
        batch_op.drop_constraint("uq_accounts_username", type_="unique")
    protect("accounts", "id", sa.Uuid(), ACCOUNTS, ACCOUNT_BLINDS)
    with _batch("accounts") as batch_op:
        batch_op.create_unique_constraint("uq_accounts_username_index", ["username_index"])


def downgrade() -> None:
    with _batch("accounts") as batch_op:
        batch_op.drop_constraint("uq_accounts_username_index", type_="unique")
    unprotect("accounts", "id", sa.Uuid(), ACCOUNTS, ACCOUNT_BLINDS)
    with _batch("accounts") as batch_op:
        batch_op.create_unique_constraint("uq_accounts_username", ["username"])

    with _batch("subject_identities") as batch_op:
        batch_op.drop_index("ix_subject_identities_provider_external_id_index")
    unprotect("subject_identities", "id", sa.Uuid(), IDENTITIES, IDENTITY_BLINDS)
    with _batch("subject_identities") as batch_op:
        batch_op.create_index(
            "ix_subject_identities_provider_external_id",
            ["provider", "external_id"],
            unique=True,
        )

    with _batch("subjects") as batch_op:
        batch_op.drop_index("ix_subjects_email_index")
        batch_op.drop_constraint("uq_subjects_external_ref_index", type_="unique")
    unprotect("subjects", "id", sa.Uuid(), SUBJECTS, SUBJECT_BLINDS)
    with _batch("subjects") as batch_op:
        batch_op.create_unique_constraint("uq_subjects_external_ref", ["external_ref"])
