"""analytics initial schema

Revision ID: analytics_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("analytics",)
depends_on: str | Sequence[str] | None = "core_0001"


def upgrade() -> None:
    op.create_table(
        "analytics_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_analytics_sessions_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_sessions")),
    )
    with op.batch_alter_table("analytics_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_sessions_started_at"), ["started_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_analytics_sessions_subject_id_started_at"),
            ["subject_id", "started_at"],
            unique=False,
        )

    op.create_table(
        "analytics_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["analytics_sessions.id"],
            name=op.f("fk_analytics_events_session_id_analytics_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_analytics_events_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_events")),
    )
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_events_subject_time", ["subject_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_analytics_events_type_time", ["type", "occurred_at"], unique=False
        )

    op.create_table(
        "page_views",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("referrer", sa.String(length=2048), nullable=True),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["analytics_sessions.id"],
            name=op.f("fk_page_views_session_id_analytics_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_page_views_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_views")),
    )
    with op.batch_alter_table("page_views", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_page_views_session_id"), ["session_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_page_views_subject_id_viewed_at"),
            ["subject_id", "viewed_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("page_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_page_views_subject_id_viewed_at"))
        batch_op.drop_index(batch_op.f("ix_page_views_session_id"))

    op.drop_table("page_views")
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_events_type_time")
        batch_op.drop_index("ix_analytics_events_subject_time")

    op.drop_table("analytics_events")
    with op.batch_alter_table("analytics_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_sessions_subject_id_started_at"))
        batch_op.drop_index(batch_op.f("ix_analytics_sessions_started_at"))

    op.drop_table("analytics_sessions")
