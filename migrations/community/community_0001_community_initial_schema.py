"""community initial schema

Revision ID: community_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "community_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("community",)
depends_on: str | Sequence[str] | None = "core_0001"


def upgrade() -> None:
    op.create_table(
        "communities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner_subject_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_subject_id"],
            ["subjects.id"],
            name=op.f("fk_communities_owner_subject_id_subjects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
        sa.UniqueConstraint("slug", name=op.f("uq_communities_slug")),
    )
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_communities_owner_subject_id"), ["owner_subject_id"], unique=False
        )

    op.create_table(
        "moderation_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reporter_subject_id", sa.Uuid(), nullable=True),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["reporter_subject_id"],
            ["subjects.id"],
            name=op.f("fk_moderation_reports_reporter_subject_id_subjects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_reports")),
    )
    with op.batch_alter_table("moderation_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_moderation_reports_reporter_subject_id"),
            ["reporter_subject_id"],
            unique=False,
        )

    op.create_table(
        "memberships",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_memberships_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_memberships_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_memberships_community_id_subject_id"),
            ["community_id", "subject_id"],
            unique=True,
        )
        batch_op.create_index(batch_op.f("ix_memberships_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "posts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("author_subject_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_subject_id"], ["subjects.id"], name=op.f("fk_posts_author_subject_id_subjects")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_posts_community_id_communities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_posts_author_subject_id"), ["author_subject_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_posts_community_id_created_at"),
            ["community_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_posts_deleted_at"), ["deleted_at"], unique=False)

    op.create_table(
        "comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("author_subject_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_subject_id"],
            ["subjects.id"],
            name=op.f("fk_comments_author_subject_id_subjects"),
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_comments_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_comments_author_subject_id"), ["author_subject_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_comments_post_id"), ["post_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comments_post_id"))
        batch_op.drop_index(batch_op.f("ix_comments_author_subject_id"))

    op.drop_table("comments")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posts_deleted_at"))
        batch_op.drop_index(batch_op.f("ix_posts_community_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_posts_author_subject_id"))

    op.drop_table("posts")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memberships_subject_id"))
        batch_op.drop_index(batch_op.f("ix_memberships_community_id_subject_id"))

    op.drop_table("memberships")
    with op.batch_alter_table("moderation_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moderation_reports_reporter_subject_id"))

    op.drop_table("moderation_reports")
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_communities_owner_subject_id"))

    op.drop_table("communities")
