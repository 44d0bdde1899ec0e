from __future__ import annotations

from sqlalchemy import select

from govern import audit
from govern.db import create_engine, transaction
from govern.domains.core import AuditLog


def test_record_appends_in_callers_transaction(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    with transaction(engine) as s:
        row = audit.record(
            s,
            actor="ops",
            action="keys.rotate",
            target_type="key",
            target_id="k1",
            details={"count": 2},
        )
        assert row.id is not None
        s.rollback()
    with transaction(engine) as s:
        assert s.scalars(select(AuditLog)).all() == []
        audit.record(s, actor="ops", action="keys.rotate", target_type="key")
    with transaction(engine) as s:
        got = s.scalars(select(AuditLog)).one()
        assert (got.actor, got.action, got.details) == ("ops", "keys.rotate", {})
    engine.dispose()
