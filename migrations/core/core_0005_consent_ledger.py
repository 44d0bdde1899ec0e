"""consent ledger: purposes, notices, hash-chained records, projection, checkpoints

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0005"
down_revision: str | Sequence[str] | None = "core_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("consent_records", "consent_checkpoints", "consent_checkpoint_heads")


def _append_only_up() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        return
    op.execute(
        "CREATE FUNCTION govern_consent_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION govern_consent_append_only()"
        )


def _append_only_down() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{verb}")
        return
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.execute("DROP FUNCTION govern_consent_append_only()")


def upgrade() -> None:
    op.create_table(
        "consent_chain_heads",
        sa.Column("subject_ref", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.Column("checkpointed_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject_ref", name=op.f("pk_consent_chain_heads")),
    )
    op.create_table(
        "consent_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("head_count", sa.Integer(), nullable=False),
        sa.Column("heads_digest", sa.String(length=64), nullable=False),
        sa.Column("prev_digest", sa.String(length=64), nullable=True),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_checkpoints")),
    )
    op.create_table(
        "consent_notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("default_locale", sa.String(length=35), nullable=False),
        sa.Column("controller", sa.String(length=200), nullable=False),
        sa.Column("controller_contact", sa.String(length=200), nullable=False),
        sa.Column("controller_email", sa.String(length=320), nullable=False),
        sa.Column("controller_phone", sa.String(length=64), nullable=False),
        sa.Column("controller_address", sa.String(length=500), nullable=False),
        sa.Column("policy_url", sa.String(length=500), nullable=False),
        sa.Column("material_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_notices")),
        sa.UniqueConstraint("key", name=op.f("uq_consent_notices_key")),
    )
    op.create_table(
        "consent_checkpoint_heads",
        sa.Column("checkpoint_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("subject_ref", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["consent_checkpoints.id"],
            name=op.f("fk_consent_checkpoint_heads_checkpoint_id_consent_checkpoints"),
        ),
        sa.PrimaryKeyConstraint(
            "checkpoint_id", "subject_ref", name=op.f("pk_consent_checkpoint_heads")
        ),
    )
    op.create_table(
        "consent_notice_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("material_change", sa.Boolean(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["consent_notices.id"],
            name=op.f("fk_consent_notice_versions_notice_id_consent_notices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_notice_versions")),
    )
    with op.batch_alter_table("consent_notice_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_notice_versions_notice_id_version"),
            ["notice_id", "version"],
            unique=True,
        )

    op.create_table(
        "consent_purposes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.String(length=32), nullable=False),
        sa.Column("data_categories", sa.JSON(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("consent_validity_days", sa.Integer(), nullable=True),
        sa.Column("sale_or_sharing", sa.Boolean(), nullable=False),
        sa.Column("third_parties", sa.JSON(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["consent_notices.id"],
            name=op.f("fk_consent_purposes_notice_id_consent_notices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_purposes")),
        sa.UniqueConstraint("key", name=op.f("uq_consent_purposes_key")),
    )
    with op.batch_alter_table("consent_purposes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_purposes_notice_id"), ["notice_id"], unique=False
        )

    op.create_table(
        "consent_notice_texts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["consent_notice_versions.id"],
            name=op.f("fk_consent_notice_texts_version_id_consent_notice_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_notice_texts")),
    )
    with op.batch_alter_table("consent_notice_texts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_notice_texts_version_id_locale"),
            ["version_id", "locale"],
            unique=True,
        )

    op.create_table(
        "consent_records",
        sa.Column("subject_ref", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("purpose_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("notice_version_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("legal_basis", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("jurisdiction", sa.String(length=16), nullable=True),
        sa.Column("controller", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tcf_string", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_version_id"],
            ["consent_notice_versions.id"],
            name=op.f("fk_consent_records_notice_version_id_consent_notice_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["purpose_id"],
            ["consent_purposes.id"],
            name=op.f("fk_consent_records_purpose_id_consent_purposes"),
        ),
        sa.PrimaryKeyConstraint("subject_ref", "seq", name=op.f("pk_consent_records")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_consent_records_idempotency_key")),
        sa.UniqueConstraint("record_id", name=op.f("uq_consent_records_record_id")),
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_records_purpose_id"), ["purpose_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_records_recorded_at"), ["recorded_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_records_subject_ref_purpose_id_occurred_at"),
            ["subject_ref", "purpose_id", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "consent_state",
        sa.Column("subject_ref", sa.String(length=128), nullable=False),
        sa.Column("purpose_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notice_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["purpose_id"],
            ["consent_purposes.id"],
            name=op.f("fk_consent_state_purpose_id_consent_purposes"),
        ),
        sa.PrimaryKeyConstraint("subject_ref", "purpose_id", name=op.f("pk_consent_state")),
    )
    with op.batch_alter_table("consent_state", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_state_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_state_purpose_id_status"), ["purpose_id", "status"], unique=False
        )

    _append_only_up()


def downgrade() -> None:
    _append_only_down()
    with op.batch_alter_table("consent_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_state_purpose_id_status"))
        batch_op.drop_index(batch_op.f("ix_consent_state_expires_at"))

    op.drop_table("consent_state")
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_records_subject_ref_purpose_id_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_consent_records_recorded_at"))
        batch_op.drop_index(batch_op.f("ix_consent_records_purpose_id"))

    op.drop_table("consent_records")
    with op.batch_alter_table("consent_notice_texts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_notice_texts_version_id_locale"))

    op.drop_table("consent_notice_texts")
    with op.batch_alter_table("consent_purposes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_purposes_notice_id"))

    op.drop_table("consent_purposes")
    with op.batch_alter_table("consent_notice_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_notice_versions_notice_id_version"))

    op.drop_table("consent_notice_versions")
    op.drop_table("consent_checkpoint_heads")
    op.drop_table("consent_notices")
    op.drop_table("consent_checkpoints")
    op.drop_table("consent_chain_heads")
