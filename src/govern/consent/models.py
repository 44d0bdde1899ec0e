"""Consent ledger tables (core domain): catalog, append-only ledger, projection, checkpoints.

The ledger (``consent_records``) is append-only, enforced by database triggers; the
projection (``consent_state``) and the chain heads are derived state kept in the same
transaction as each append, and ``govern consent verify`` recomputes them.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from govern.datamap import PSEUDONYMOUS, governed, not_personal, personal
from govern.db import CoreBase
from govern.types.utc import UTCDateTime, utcnow

_OWNER = "team-privacy"
_STEWARD = "dpo@example.com"
_CONTROLLER_INFO = not_personal("the controller's business contact, not a data subject's")


class Notice(CoreBase):
    """A privacy notice published by a controller; its versions hold the texts."""

    __tablename__ = "consent_notices"
    __table_args__ = {
        "info": governed(
            owner=_OWNER,
            steward=_STEWARD,
            subject_link=None,
            description="Privacy notices and the controller that publishes each.",
        )
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    default_locale: Mapped[str] = mapped_column(String(35))
    controller: Mapped[str] = mapped_column(String(200))
    controller_contact: Mapped[str] = mapped_column(String(200), info=_CONTROLLER_INFO)
    controller_email: Mapped[str] = mapped_column(String(320), info=_CONTROLLER_INFO)
    controller_phone: Mapped[str] = mapped_column(String(64), info=_CONTROLLER_INFO)
    controller_address: Mapped[str] = mapped_column(String(500), info=_CONTROLLER_INFO)
    policy_url: Mapped[str] = mapped_column(String(500), info=not_personal("a public policy URL"))
    material_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NoticeVersion(CoreBase):
    """One published version of a notice; a material change makes earlier consents stale."""

    __tablename__ = "consent_notice_versions"
    __table_args__ = (
        Index(None, "notice_id", "version", unique=True),
        {
            "info": governed(
                owner=_OWNER,
                steward=_STEWARD,
                subject_link=None,
                description="Versions of privacy notices, with the material-change flag.",
            )
        },
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("consent_notices.id"))
    version: Mapped[int] = mapped_column(Integer)
    material_change: Mapped[bool] = mapped_column(Boolean)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class NoticeText(CoreBase):
    """The text of a notice version in one locale (BCP 47, e.g. ``fr-CA``)."""

    __tablename__ = "consent_notice_texts"
    __table_args__ = (
        Index(None, "version_id", "locale", unique=True),
        {
            "info": governed(
                owner=_OWNER,
                steward=_STEWARD,
                subject_link=None,
                description="Localised texts of each notice version.",
            )
        },
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("consent_notice_versions.id"))
    locale: Mapped[str] = mapped_column(String(35))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, info=not_personal("the published notice text"))


class Purpose(CoreBase):
    """A processing purpose with its GDPR Art. 6(1) legal basis (W3C DPV name)."""

    __tablename__ = "consent_purposes"
    __table_args__ = {
        "info": governed(
            owner=_OWNER,
            steward=_STEWARD,
            subject_link=None,
            description="Processing purposes: legal basis, data categories, retention.",
        )
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200), info=not_personal("a purpose's name"))
    description: Mapped[str] = mapped_column(
        Text, default="", info=not_personal("describes a purpose")
    )
    legal_basis: Mapped[str] = mapped_column(String(32))
    data_categories: Mapped[list[str]] = mapped_column(
        JSON, default=list, info=not_personal("taxonomy keys")
    )
    retention_days: Mapped[int | None] = mapped_column(Integer)
    consent_validity_days: Mapped[int | None] = mapped_column(Integer)
    sale_or_sharing: Mapped[bool] = mapped_column(Boolean, default=False)
    third_parties: Mapped[list[str]] = mapped_column(
        JSON, default=list, info=not_personal("names of recipient organisations")
    )
    notice_id: Mapped[int] = mapped_column(ForeignKey("consent_notices.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsentRecord(CoreBase):
    """One consent decision. Append-only; ``hash`` chains it to the subject's previous record."""

    __tablename__ = "consent_records"
    __table_args__ = (
        Index(None, "subject_ref", "purpose_id", "occurred_at"),
        {
            "info": governed(
                owner=_OWNER,
                steward=_STEWARD,
                subject_link="subject_ref",
                description="Append-only, hash-chained consent ledger (ISO/IEC TS 27560 shape).",
            )
        },
    )

    subject_ref: Mapped[str] = mapped_column(
        String(128), primary_key=True, info=personal(PSEUDONYMOUS)
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    record_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("consent_purposes.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    notice_version_id: Mapped[int] = mapped_column(ForeignKey("consent_notice_versions.id"))
    locale: Mapped[str] = mapped_column(String(35))
    legal_basis: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16))
    jurisdiction: Mapped[str | None] = mapped_column(String(16))
    controller: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    tcf_string: Mapped[str | None] = mapped_column(
        Text,
        info=not_personal(
            "an IAB TCF string: the consent choices themselves (as event and purpose are), "
            "with no identifier of the person"
        ),
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ConsentState(CoreBase):
    """The current decision per subject and purpose: a projection of the ledger."""

    __tablename__ = "consent_state"
    __table_args__ = (
        Index(None, "purpose_id", "status"),
        {
            "info": governed(
                owner=_OWNER,
                steward=_STEWARD,
                subject_link="subject_ref",
                description="Current consent per subject and purpose, derived from the ledger.",
            )
        },
    )

    subject_ref: Mapped[str] = mapped_column(
        String(128), primary_key=True, info=personal(PSEUDONYMOUS)
    )
    purpose_id: Mapped[int] = mapped_column(
        ForeignKey("consent_purposes.id"), primary_key=True, autoincrement=False
    )
    status: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer)
    record_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    notice_version: Mapped[int] = mapped_column(Integer)


class ChainHead(CoreBase):
    """The last record of each subject's chain: the row appends lock to stay linear."""

    __tablename__ = "consent_chain_heads"
    __table_args__ = {
        "info": governed(
            owner=_OWNER,
            steward=_STEWARD,
            subject_link="subject_ref",
            description="Head (sequence and hash) of each subject's consent chain.",
        )
    }

    subject_ref: Mapped[str] = mapped_column(
        String(128), primary_key=True, info=personal(PSEUDONYMOUS)
    )
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str | None] = mapped_column(String(64))
    checkpointed_seq: Mapped[int] = mapped_column(Integer, default=0)


class Checkpoint(CoreBase):
    """A signed (Ed25519) statement of the chain heads changed since the previous one."""

    __tablename__ = "consent_checkpoints"
    __table_args__ = {
        "info": governed(
            owner=_OWNER,
            steward=_STEWARD,
            subject_link=None,
            description="Signed checkpoints of the consent chains' heads.",
        )
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    record_count: Mapped[int] = mapped_column(Integer)
    head_count: Mapped[int] = mapped_column(Integer)
    heads_digest: Mapped[str] = mapped_column(String(64))
    prev_digest: Mapped[str | None] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


class CheckpointHead(CoreBase):
    """A chain head as signed by a checkpoint."""

    __tablename__ = "consent_checkpoint_heads"
    __table_args__ = {
        "info": governed(
            owner=_OWNER,
            steward=_STEWARD,
            subject_link="subject_ref",
            description="The chain heads each checkpoint signed.",
        )
    }

    checkpoint_id: Mapped[int] = mapped_column(
        ForeignKey("consent_checkpoints.id"), primary_key=True, autoincrement=False
    )
    subject_ref: Mapped[str] = mapped_column(
        String(128), primary_key=True, info=personal(PSEUDONYMOUS)
    )
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


__all__ = [
    "ChainHead",
    "Checkpoint",
    "CheckpointHead",
    "ConsentRecord",
    "ConsentState",
    "Notice",
    "NoticeText",
    "NoticeVersion",
    "Purpose",
]
