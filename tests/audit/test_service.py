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


def test_record_many_writes_the_rows_record_writes_in_order(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    with transaction(engine) as s:
        assert (
            audit.record_many(
                s,
                actor="w1",
                action="dsr.step",
                target_type="dsr_request",
                target_id="r",
                details=[],
            )
            == 0
        )
        n = audit.record_many(
            s,
            actor="w1",
            action="dsr.step",
            target_type="dsr_request",
            target_id="r",
            details=[{"seq": 1}, {"seq": 2}, {"seq": 3}],
        )
        assert n == 3
        s.rollback()  # never committed by record_many
    with transaction(engine) as s:
        assert s.scalars(select(AuditLog)).all() == []
        audit.record_many(
            s,
            actor="w1",
            action="dsr.step",
            target_type="dsr_request",
            target_id="r",
            details=[{"seq": 1}, {"seq": 2}],
        )
    with transaction(engine) as s:
        rows = s.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        got = [(r.actor, r.action, r.target_type, r.target_id, r.details) for r in rows]
        assert got == [
            ("w1", "dsr.step", "dsr_request", "r", {"seq": 1}),
            ("w1", "dsr.step", "dsr_request", "r", {"seq": 2}),
        ]
        assert all(r.occurred_at is not None for r in rows)
    engine.dispose()
