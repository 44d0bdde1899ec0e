"""Writing to ``audit_log``. Details hold ids, counts and categories, never personal values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from govern.domains.core import AuditLog


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
