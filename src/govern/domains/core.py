"""Core domain: data subjects, their identities, accounts and the audit log."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from govern.datamap import governed, not_personal, personal
from govern.db import CoreBase
from govern.types.blind_index import BlindIndex
from govern.types.encrypted import EncryptedDate, EncryptedString
from govern.types.utc import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class Subject(CoreBase):
    """A natural person whose data govern keeps. ``external_ref`` is the host's pseudonymous id."""

    __tablename__ = "subjects"
    __table_args__ = {
        "info": governed(
            owner="team-identity",
            steward="dpo@example.com",
            subject_link="id",
            description="Data subjects: one row per natural person.",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    external_ref: Mapped[str] = mapped_column(EncryptedString(), info=personal("user.unique_id"))
    email: Mapped[str | None] = mapped_column(
        EncryptedString(), info=personal("user.contact.email")
    )
    phone: Mapped[str | None] = mapped_column(
        EncryptedString(), info=personal("user.contact.phone_number")
    )
    given_name: Mapped[str | None] = mapped_column(
        EncryptedString(), info=personal("user.name.first")
    )
    family_name: Mapped[str | None] = mapped_column(
        EncryptedString(), info=personal("user.name.last")
    )
    birth_date: Mapped[dt.date | None] = mapped_column(
        EncryptedDate(), info=personal("user.demographic.date_of_birth")
    )
    country: Mapped[str | None] = mapped_column(
        EncryptedString(), info=personal("user.contact.address.country")
    )
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Blind indexes (filled at flush): find a subject by external ref or by email.
    external_ref_index: Mapped[bytes] = mapped_column(
        BlindIndex("external_ref", bits=128),
        unique=True,
        info=not_personal("keyed, truncated hash of external_ref (blind index)"),
    )
    email_index: Mapped[bytes | None] = mapped_column(
        BlindIndex("email", bits=32, casefold=True),
        index=True,
        info=not_personal("keyed, truncated hash of email (blind index)"),
    )


class SubjectIdentity(CoreBase):
    """An identifier of a subject in another system (SSO, CRM, mobile app)."""

    __tablename__ = "subject_identities"
    __table_args__ = (
        Index(None, "provider", "external_id_index", unique=True),
        {
            "info": governed(
                owner="team-identity",
                steward="dpo@example.com",
                subject_link="subject_id",
                description="External identifiers linking a subject to other systems.",
            )
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subject_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(EncryptedString(), info=personal("user.unique_id"))
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    external_id_index: Mapped[bytes] = mapped_column(
        BlindIndex("external_id", bits=128),
        info=not_personal("keyed, truncated hash of external_id (blind index)"),
    )


class Account(CoreBase):
    """A login. Service accounts have ``is_service`` set and no subject."""

    __tablename__ = "accounts"
    __table_args__ = {
        "info": governed(
            owner="team-identity",
            steward="security@example.com",
            subject_link="subject_id",
            description="Login accounts with password hashes (never plaintext).",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str] = mapped_column(EncryptedString(), info=personal("user.account.username"))
    password_hash: Mapped[str] = mapped_column(
        EncryptedString(), info=personal("user.authorization.credentials")
    )
    password_scheme: Mapped[str] = mapped_column(
        String(32), default="argon2id", info=not_personal("the hash algorithm's name")
    )
    is_service: Mapped[bool] = mapped_column(Boolean, default=False)
    must_reset: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    username_index: Mapped[bytes] = mapped_column(
        BlindIndex("username", bits=128),
        unique=True,
        info=not_personal("keyed, truncated hash of username (blind index)"),
    )


class AuditLog(CoreBase):
    """Append-only record of governance actions. The database refuses updates and deletes.

    ``details`` holds ids, counts and categories, never personal values.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "target_type", "target_id"),
        {
            "info": governed(
                owner="team-governance",
                steward="dpo@example.com",
                subject_link=None,
                description="Append-only audit trail: actor, action, target, time, details.",
            )
        },
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, info=not_personal("ids, counts and categories only, never values")
    )
