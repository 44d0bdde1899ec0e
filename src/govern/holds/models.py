"""Legal hold tables (core domain)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from govern.datamap import governed, not_personal
from govern.db import CoreBase
from govern.types.utc import UTCDateTime, utcnow


class LegalHold(CoreBase):
    """A hold for one subject or a case covering several; no expiry until released."""

    __tablename__ = "legal_holds"
    __table_args__ = {
        "info": governed(
            owner="team-legal",
            steward="legal@example.com",
            subject_link=None,
            description="Legal holds: data kept for legal claims (Art. 17(3)(e)).",
        )
    }

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_ref: Mapped[str | None] = mapped_column(String(100), index=True)
    reason: Mapped[str] = mapped_column(
        Text, info=not_personal("the legal ground, written by counsel, not about a person")
    )
    created_by: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    released_by: Mapped[str | None] = mapped_column(String(150))
    release_note: Mapped[str | None] = mapped_column(
        Text, info=not_personal("why counsel lifted the hold")
    )
    subjects: Mapped[list[LegalHoldSubject]] = relationship(
        back_populates="hold", cascade="all, delete-orphan", lazy="selectin"
    )


class LegalHoldSubject(CoreBase):
    __tablename__ = "legal_hold_subjects"
    __table_args__ = {
        "info": governed(
            owner="team-legal",
            steward="legal@example.com",
            subject_link="subject_id",
            description="Subjects covered by each legal hold.",
        )
    }

    hold_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_holds.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subjects.id"), primary_key=True, index=True
    )
    hold: Mapped[LegalHold] = relationship(back_populates="subjects")
