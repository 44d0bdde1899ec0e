"""Steps the plan proved empty: still executed, consecutive ones in one atomic transaction.

A subject with little data has long runs of steps whose tables held none of its rows when
the plan counted them. They run for real (a row written since is still erased), but share
one transaction with all their checkpoints; killing a worker inside such a transaction at
any of its steps rolls the whole group back, and the resuming worker runs it once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from govern import dsr
from govern.db import transaction
from govern.domains import commerce, core
from govern.dsr import WorkCalendar
from govern.dsr.engine import MANUAL, empty_when_planned
from govern.dsr.models import DsrStep, Restriction
from govern.dsr.workers import _Pending, run_claimed, take, units
from govern.events.models import OutboxEvent

from .conftest import approved_request
from .test_resume import _kill_at, _pending_seqs, _step_audits, resume


def _p(seq: int, action: str, rows: int) -> _Pending:
    return _Pending(seq, seq, f"t{seq}", action, rows)


def test_units_with_budget_0_group_only_consecutive_planned_empty_steps() -> None:
    pending = [
        _p(1, "withdraw", 0),
        _p(2, "delete", 0),
        _p(3, "redact", 0),
        _p(4, "delete", 2),
        _p(5, "restrict", 0),  # writes a restriction row whatever the count: alone
        _p(6, "delete", 0),
        _p(7, "rectify", 0),
        _p(8, "redact", 1),
        _p(9, "delete", 0),
        _p(10, "shred", 0),  # destroys keys the plan does not count: alone
    ]
    got = [[s.seq for s in u] for u in units(pending, 0)]
    assert got == [[1, 2, 3], [4], [5], [6, 7], [8], [9], [10]]
    assert [s.seq for u in units(pending, 0) for s in u] == list(range(1, 11))


def test_units_share_a_transaction_up_to_the_row_budget_in_plan_order() -> None:
    pending = [
        _p(1, "withdraw", 0),
        _p(2, "delete", 3),
        _p(3, "redact", 2),
        _p(4, "delete", 6),  # 3 + 2 + 6 > 10: a new transaction
        _p(5, "restrict", 4),
        _p(6, "delete", 25),  # more than the budget: alone
        _p(7, "rectify", 0),
        _p(8, MANUAL, 0),  # manual steps are always alone (the worker stops there)
        _p(9, "delete", 1),
        _p(10, "shred", 0),
    ]
    got = [[s.seq for s in u] for u in units(pending, 10)]
    assert got == [[1, 2, 3], [4, 5], [6], [7], [8], [9, 10]]
    assert [[s.seq for s in u] for u in units(pending)] == [[1, 2, 3, 4, 5, 6, 7], [8], [9, 10]]
    with pytest.raises(ValueError, match="0 or more"):
        units(pending, -1)


@pytest.mark.parametrize(
    ("action", "rows", "expected"),
    [
        ("delete", 0, True),
        ("redact", 0, True),
        ("rectify", 0, True),
        ("withdraw", 0, True),
        ("delete", 1, False),
        ("restrict", 0, False),
        ("shred", 0, False),
        ("read", 0, False),
        ("package", 0, False),
        ("keep", 0, False),
    ],
)
def test_empty_when_planned(action: str, rows: int, expected: bool) -> None:
    assert expected == empty_when_planned(action, rows)


def _thin_request(engine: Engine, cal: WorkCalendar) -> tuple[uuid.UUID, uuid.UUID]:
    """An erasure for a subject with a subject row and one invoice only."""
    with transaction(engine) as s:
        sid = uuid.uuid4()
        s.add(core.Subject(id=sid, external_ref=f"ext-{sid.hex[:10]}", email="thin@example.com"))
        s.flush()
        order = commerce.Order(subject_id=sid, currency="EUR", total_amount=Decimal("9.00"))
        s.add(order)
        s.flush()
        s.add(
            commerce.Invoice(
                order_id=order.id,
                subject_id=sid,
                number=f"INV-{sid.hex[:10]}",
                billing_name="Thin",
                billing_address={"city": "Berlin"},
                total_amount=Decimal("9.00"),
                currency="EUR",
                retain_until=dt.date(2036, 12, 31),
            )
        )
        return sid, approved_request(s, cal, sid)


def _units_of(engine: Engine, rid: uuid.UUID) -> list[list[int]]:
    with transaction(engine) as s:
        steps = dsr.plan(s, rid).steps
    pending = [_Pending(st.seq, st.seq, st.table, st.action, st.rows) for st in steps]
    return [[p.seq for p in u] for u in units([p for p in pending if p.action != "keep"], 0)]


@pytest.mark.parametrize("phase", ["executed", "committed"])
def test_thin_erasure_killed_at_every_step_resumes_exactly_once(
    engine: Engine,
    migrated_url: str,
    kek: str,
    calendar: WorkCalendar,
    export_dir: Path,
    phase: str,
) -> None:
    groups = _units_of(engine, _thin_request(engine, calendar)[1])
    assert any(len(g) > 2 for g in groups), groups  # the point of this test: real groups
    runnable = [seq for g in groups for seq in g]
    for i, group in enumerate(groups):
        # inside a group, every step is a kill point; after its commit, all are the same one
        for seq in group if phase == "executed" else group[-1:]:
            sid, rid = _thin_request(engine, calendar)
            assert _kill_at(migrated_url, kek, rid, export_dir, seq, phase, 0) == -9
            # all of a group commits, or none of it
            done_units = groups[: i + 1] if phase == "committed" else groups[:i]
            assert {x for g in done_units for x in g} == set(_step_audits(engine, rid))
            # a kill in the first transaction undid the claim and its stored plan as well
            left = set(runnable) - {x for g in done_units for x in g} if done_units else set()
            assert left == set(_pending_seqs(engine, rid))
            finished = phase == "committed" and i == len(groups) - 1
            resume(engine, rid, export_dir, finished=finished)
            assert _pending_seqs(engine, rid) == []
            audits = _step_audits(engine, rid)
            assert set(audits.values()) == {1}, f"a step ran twice after a kill at {seq}/{phase}"
            assert set(audits) == set(runnable)
            with transaction(engine) as s:
                assert s.get(core.Subject, sid).email is None  # type: ignore[union-attr]
                assert (
                    s.scalar(
                        select(func.count())
                        .select_from(Restriction)
                        .where(Restriction.subject_id == sid)
                    )
                    == 1
                )


def test_row_written_after_planning_into_a_planned_empty_table_is_erased(
    engine: Engine, calendar: WorkCalendar, export_dir: Path
) -> None:
    sid, rid = _thin_request(engine, calendar)
    take(engine, rid, worker="w1")  # claims and stores the plan: wallets counted empty
    with transaction(engine) as s:
        step = s.scalars(
            select(DsrStep).where(DsrStep.request_id == rid, DsrStep.table_name == "wallets")
        ).one()
        assert (step.action, step.planned_rows, step.status) == ("delete", 0, "pending")
        wallet = commerce.Wallet(subject_id=sid, balance=Decimal("1.00"), currency="EUR")
        s.add(wallet)
        s.flush()
        wallet_id = str(wallet.id)
    result = run_claimed(engine, rid, worker="w1", export_dir=export_dir)
    assert result.state == "completed"
    with transaction(engine) as s:
        left = s.scalar(
            select(func.count())
            .select_from(commerce.Wallet)
            .where(commerce.Wallet.subject_id == sid)
        )
        assert left == 0
        step = s.get(DsrStep, step.id)
        assert step is not None
        assert (step.status, step.planned_rows, step.rows_affected) == ("done", 0, 1)
        # Art. 19: recipients learn of the late row's deletion too (keys only)
        tombstones = s.scalars(
            select(OutboxEvent.aggregateid).where(
                OutboxEvent.type == "govern.row.deleted", OutboxEvent.aggregatetype == "wallets"
            )
        ).all()
        assert wallet_id in tombstones
