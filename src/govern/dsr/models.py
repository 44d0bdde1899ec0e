"""Data-subject request tables (core domain).

Verification codes are stored only as salted hashes. Identifiers and rectification values
are personal data the request itself needs; they live here, not in the audit log.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from govern.datamap import governed, not_personal, personal
from govern.db import CoreBase
from govern.types.encrypted import EncryptedJSON, EncryptedString
from govern.types.utc import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class DsrRequest(CoreBase):
    """One request of a data subject exercising a GDPR/CCPA right."""

    __tablename__ = "dsr_requests"
    __table_args__ = (
        # the claim takes the first request of a state in (due_at, id) order from it
        Index(None, "state", "due_at", "id"),
        {
            "info": governed(
                owner="team-privacy",
                steward="dpo@example.com",
                subject_link="subject_id",
                description="Data-subject requests: type, state, deadline, verification.",
            )
        },
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24), default="received")
    jurisdiction: Mapped[str] = mapped_column(String(8), default="gdpr")
    channel: Mapped[str] = mapped_column(String(32), default="web")
    subject_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subjects.id"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    extended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    extension_reason: Mapped[str | None] = mapped_column(
        Text, info=not_personal("why the controller needs longer, about the workload")
    )
    assigned_to: Mapped[str | None] = mapped_column(String(150))
    decision_reason: Mapped[str | None] = mapped_column(
        Text, info=not_personal("the operator's reason for approving or denying")
    )
    code_hash: Mapped[str | None] = mapped_column(String(128))
    code_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    verified_by: Mapped[str | None] = mapped_column(String(150))
    corrections: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON(), default=dict, info=personal("user.content.private")
    )
    claimed_by: Mapped[str | None] = mapped_column(String(150))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, info=not_personal("tables, counts and legal exceptions only")
    )
    notified: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, info=not_personal("which notices were sent, and when")
    )

    identifiers: Mapped[list[DsrIdentifier]] = relationship(
        back_populates="request", cascade="all, delete-orphan", lazy="select"
    )


class DsrIdentifier(CoreBase):
    """How the requester identified themself (email, external ref, subject id, ...)."""

    __tablename__ = "dsr_identifiers"
    __table_args__ = {
        "info": governed(
            owner="team-privacy",
            steward="dpo@example.com",
            subject_link="request_id -> dsr_requests.subject_id",
            description="Identifiers given by the requester at intake.",
        )
    }

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dsr_requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(EncryptedString(), info=personal("user.unique_id"))
    request: Mapped[DsrRequest] = relationship(back_populates="identifiers")


class DsrTransition(CoreBase):
    """Every state change of a request: who, when, from, to, why."""

    __tablename__ = "dsr_transitions"
    __table_args__ = {
        "info": governed(
            owner="team-privacy",
            steward="dpo@example.com",
            subject_link=None,
            description="State transitions of data-subject requests.",
        )
    }

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dsr_requests.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(150))
    reason: Mapped[str | None] = mapped_column(
        Text, info=not_personal("why the state changed, written without personal values")
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DsrStep(CoreBase):
    """One step of a request's plan; ``status`` is its checkpoint."""

    __tablename__ = "dsr_steps"
    __table_args__ = (
        Index(None, "request_id", "seq", unique=True),
        {
            "info": governed(
                owner="team-privacy",
                steward="dpo@example.com",
                subject_link=None,
                description="Planned steps of each request, checkpointed one by one.",
            )
        },
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dsr_requests.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    table_name: Mapped[str | None] = mapped_column(
        String(128), info=not_personal("the name of a database table or a manual location")
    )
    action: Mapped[str] = mapped_column(String(24))
    columns: Mapped[list[str]] = mapped_column(
        JSON, default=list, info=not_personal("column names only")
    )
    planned_rows: Mapped[int] = mapped_column(Integer, default=0)
    exception: Mapped[str | None] = mapped_column(
        Text, info=not_personal("the legal exception applied, e.g. Art. 17(3)(b)")
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    rows_affected: Mapped[int | None] = mapped_column(Integer)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    done_by: Mapped[str | None] = mapped_column(String(150))
    staged_to: Mapped[int | None] = mapped_column(
        BigInteger, info=not_personal("a byte offset in the request's staging file")
    )
    """A ``read`` step's end in the request's staging file (what a resumed worker keeps)."""


class DsrExport(CoreBase):
    """An access or portability package written for a request."""

    __tablename__ = "dsr_exports"
    __table_args__ = {
        "info": governed(
            owner="team-privacy",
            steward="dpo@example.com",
            subject_link="request_id -> dsr_requests.subject_id",
            description="Access and portability packages: where, how large, checksum.",
        )
    }

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dsr_requests.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigId)
    tables: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Restriction(CoreBase):
    """A subject's data restricted (Art. 18), in one table or everywhere (``table_name`` null).

    Kept in one core table, so no domain table needs a flag column: queries exclude
    restricted subjects with :func:`govern.dsr.exclude_restricted`.
    """

    __tablename__ = "dsr_restrictions"
    __table_args__ = (
        Index(None, "subject_id", "lifted_at"),
        {
            "info": governed(
                owner="team-privacy",
                steward="dpo@example.com",
                subject_link="subject_id",
                description="Restrictions of processing (Art. 18), by subject and table.",
            )
        },
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"))
    table_name: Mapped[str | None] = mapped_column(
        String(128), info=not_personal("the name of a database table")
    )
    basis: Mapped[str] = mapped_column(
        String(64), info=not_personal("restriction | objection | an exception article")
    )
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("dsr_requests.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
