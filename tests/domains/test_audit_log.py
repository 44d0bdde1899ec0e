"""The audit log is append-only in the database itself, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from govern.db import create_engine, transaction
from govern.domains.core import AuditLog


def test_insert_then_update_and_delete_are_refused(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    with transaction(engine) as s:
        s.add(AuditLog(actor="ops", action="test.append", target_type="subject", target_id="x"))
    for sql in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with transaction(engine) as s:
        assert s.scalars(select(AuditLog.actor)).all() == ["ops"]
    engine.dispose()
