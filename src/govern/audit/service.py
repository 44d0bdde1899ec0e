"""Writing to ``audit_log``. Details hold ids, counts and categories, never personal values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from govern.domains.core import AuditLog
from govern.types.utc import utcnow


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditLog:
    """Append an audit row in the caller's transaction (flushed, not committed).

    ``action`` is dotted, area first: ``dsr.transition``, ``keys.rotate``, ``hold.add``.
    """
    row = AuditLog(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=dict(details or {}),
    )
    session.add(row)
    session.flush()
    return row


_INSERT = insert(cast(Table, AuditLog.__table__))


def record_many(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | None,
    details: Sequence[Mapping[str, Any]],
) -> int:
    """Append one audit row per item of ``details`` with one Core ``INSERT``; never commits.

    For hot paths (a DSR step's checkpoint): no ORM object is built or flushed. The rows
    are the ones :func:`record` writes, ids in the order given.
    """
    if not details:
        return 0
    found = rows(
        actor=actor, action=action, target_type=target_type, target_id=target_id, details=details
    )
    session.execute(_INSERT, found)  # through the Session: pending objects flush first
    return len(found)


def rows(
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | None,
    details: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The audit rows :func:`record_many` writes (one per item of ``details``, one time),
    for a caller that gathers them and writes them later with :func:`record_rows`."""
    now = utcnow()
    return [
        {
            "occurred_at": now,
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "details": dict(d),
        }
        for d in details
    ]


def record_rows(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Append prepared audit rows (``occurred_at``, ``actor``, ``action``, ``target_type``,
    ``target_id``, ``details``) with one Core ``INSERT`` on the session's connection, ids in
    the order given; never commits.

    For a caller that gathers a transaction's rows and writes them together (the DSR
    worker): unlike :func:`record_many` it does not flush the session's pending objects
    first, so their rows (audit rows added as ORM objects among them) are written when the
    session next flushes.
    """
    if not rows:
        return 0
    session.connection().execute(_INSERT, list(rows))
    return len(rows)
