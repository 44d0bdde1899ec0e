"""Placing, releasing and querying legal holds. Functions take a Session and never commit."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import Select, bindparam, exists, select
from sqlalchemy.orm import Session

from govern import audit
from govern.domains.core import Subject
from govern.errors import UnknownHoldError, UnknownSubjectError, UsageError
from govern.holds.models import LegalHold, LegalHoldSubject
from govern.types.utc import utcnow


class HoldOut(BaseModel):
    id: uuid.UUID
    case_ref: str | None
    reason: str
    subject_ids: list[uuid.UUID]
    created_by: str
    created_at: dt.datetime
    released_at: dt.datetime | None
    released_by: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def text_line(self) -> str:
        state = "active" if self.active else f"released {self.released_at:%Y-%m-%d}"
        case = f" case {self.case_ref}" if self.case_ref else ""
        return f"{self.id} {state}{case}: {len(self.subject_ids)} subject(s); {self.reason}"

    def text_lines(self) -> list[str]:
        return [self.text_line()]


class HoldList(BaseModel):
    holds: list[HoldOut]

    def text_lines(self) -> list[str]:
        return [h.text_line() for h in self.holds] or ["no legal holds"]


def _out(hold: LegalHold) -> HoldOut:
    return HoldOut(
        id=hold.id,
        case_ref=hold.case_ref,
        reason=hold.reason,
        subject_ids=sorted(s.subject_id for s in hold.subjects),
        created_by=hold.created_by,
        created_at=hold.created_at,
        released_at=hold.released_at,
        released_by=hold.released_by,
    )


def add_hold(
    session: Session,
    *,
    subject_ids: Sequence[uuid.UUID],
    reason: str,
    actor: str,
    case_ref: str | None = None,
) -> HoldOut:
    """Place a hold on one or more subjects (a case). Unknown subjects are refused."""
    if not subject_ids:
        raise UsageError("a legal hold needs at least one subject")
    if not reason.strip():
        raise UsageError("a legal hold needs a reason")
    wanted = set(subject_ids)
    found = set(session.scalars(select(Subject.id).where(Subject.id.in_(wanted))))
    missing = sorted(str(s) for s in wanted - found)
    if missing:
        raise UnknownSubjectError(f"unknown subject {missing[0]}")
    hold = LegalHold(case_ref=case_ref, reason=reason.strip(), created_by=actor)
    hold.subjects = [LegalHoldSubject(subject_id=s) for s in sorted(wanted)]
    session.add(hold)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="hold.add",
        target_type="legal_hold",
        target_id=str(hold.id),
        details={"subjects": len(wanted), "case_ref": case_ref},
    )
    return _out(hold)


def release_hold(
    session: Session, hold_id: uuid.UUID, *, actor: str, note: str | None = None
) -> HoldOut:
    """Release a hold; releasing one already released is an error."""
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise UnknownHoldError(f"unknown legal hold {hold_id}")
    if hold.released_at is not None:
        raise UsageError(f"legal hold {hold_id} was already released")
    hold.released_at = utcnow()
    hold.released_by = actor
    hold.release_note = note
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="hold.release",
        target_type="legal_hold",
        target_id=str(hold.id),
    )
    return _out(hold)


def list_holds(
    session: Session, *, active_only: bool = True, subject_id: uuid.UUID | None = None
) -> list[HoldOut]:
    stmt = select(LegalHold).order_by(LegalHold.created_at, LegalHold.id)
    if active_only:
        stmt = stmt.where(LegalHold.released_at.is_(None))
    if subject_id is not None:
        stmt = stmt.where(
            exists().where(
                LegalHoldSubject.hold_id == LegalHold.id, LegalHoldSubject.subject_id == subject_id
            )
        )
    return [_out(h) for h in session.scalars(stmt)]


def held_subject_ids() -> Select[tuple[uuid.UUID]]:
    """A SELECT of the subject ids under an active hold, for ``NOT IN`` / ``NOT EXISTS`` filters.

    ``select(Event).where(Event.subject_id.not_in(held_subject_ids()))``
    """
    return (
        select(LegalHoldSubject.subject_id)
        .join(LegalHold, LegalHold.id == LegalHoldSubject.hold_id)
        .where(LegalHold.released_at.is_(None))
    )


def is_held(session: Session, subject_id: uuid.UUID, *, autoflush: bool = True) -> bool:
    """Whether ``subject_id`` is under an active hold (one statement, built once).

    ``autoflush=False`` skips flushing the session's pending changes first: for a caller
    that has no hold pending in the session and changes to flush later in one statement.
    """
    params = {"sid": subject_id}
    if autoflush:
        return bool(session.scalar(_held_stmt(), params))
    return bool(session.connection().execute(_held_stmt(), params).scalar())


@functools.cache
def _held_stmt() -> Select[tuple[bool]]:
    subject = LegalHoldSubject.subject_id == bindparam("sid")
    return select(exists(held_subject_ids().where(subject)))
