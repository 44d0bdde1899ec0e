"""Community domain: communities, memberships, posts, comments and moderation reports."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from govern.datamap import governed, not_personal, personal
from govern.db import CommunityBase
from govern.types.encrypted import EncryptedString
from govern.types.utc import UTCDateTime, utcnow


class Community(CommunityBase):
    __tablename__ = "communities"
    __table_args__ = {
        "info": governed(
            owner="team-community",
            steward="community-steward@example.com",
            subject_link="owner_subject_id",
            description="Learning communities (course cohorts, interest groups).",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_subject_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subjects.id"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Membership(CommunityBase):
    __tablename__ = "memberships"
    __table_args__ = (
        Index(None, "community_id", "subject_id", unique=True),
        {
            "info": governed(
                owner="team-community",
                steward="community-steward@example.com",
                subject_link="subject_id",
                description="Who belongs to which community, with which role.",
            )
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    community_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE")
    )
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Post(CommunityBase):
    __tablename__ = "posts"
    __table_args__ = (
        Index(None, "community_id", "created_at"),
        {
            "info": governed(
                owner="team-community",
                steward="community-steward@example.com",
                subject_link="author_subject_id",
                description="Posts; soft-deleted ones keep deleted_at until retention purges them.",
            )
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    community_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("communities.id"))
    author_subject_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subjects.id"), index=True
    )
    title: Mapped[str] = mapped_column(EncryptedString(), info=personal("user.content.public"))
    body: Mapped[str] = mapped_column(EncryptedString(), info=personal("user.content.public"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)


class Comment(CommunityBase):
    __tablename__ = "comments"
    __table_args__ = {
        "info": governed(
            owner="team-community",
            steward="community-steward@example.com",
            subject_link="author_subject_id",
            description="Comments on posts.",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    post_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    author_subject_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subjects.id"), index=True
    )
    body: Mapped[str] = mapped_column(EncryptedString(), info=personal("user.content.public"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ModerationReport(CommunityBase):
    __tablename__ = "moderation_reports"
    __table_args__ = {
        "info": governed(
            owner="team-trust-safety",
            steward="community-steward@example.com",
            subject_link="reporter_subject_id",
            description="Reports of posts or comments to moderators.",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    reporter_subject_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subjects.id"), index=True
    )
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(
        String(64), info=not_personal("a code from a fixed list (spam, abuse, ...)")
    )
    notes: Mapped[str | None] = mapped_column(
        EncryptedString(), info=personal("user.content.private")
    )
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
