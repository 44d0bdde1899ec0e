"""Intake, verification, the state machine, deadlines and reports, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from govern import dsr
from govern.db import transaction
from govern.domains.core import AuditLog
from govern.dsr import WorkCalendar
from govern.dsr.models import DsrRequest, DsrTransition
from govern.errors import (
    DeadlineError,
    IllegalTransitionError,
    RectificationError,
    UnknownRequestError,
    UsageError,
    VerificationError,
)
from govern.types.utc import utcnow

from .conftest import populate_subject


def _submit(engine: Engine, cal: WorkCalendar, **kw: object) -> dsr.SubmitResult:
    with transaction(engine) as s:
        return dsr.submit(s, calendar=cal, actor="portal", **kw)  # type: ignore[arg-type]


def test_submit_issues_a_code_stored_only_as_hash(engine: Engine, calendar: WorkCalendar) -> None:
    with transaction(engine) as s:
        sid = populate_subject(s, email="ada@example.com")
    out = _submit(engine, calendar, type="access", identifiers={"email": "ada@example.com"})
    assert out.request.state == "identity_pending"
    assert out.request.subject_found
    code = out.verification_code.get_secret_value()  # type: ignore[union-attr]
    assert len(code) == 8
    assert "verification_code" not in out.model_dump(mode="json")
    with transaction(engine) as s:
        row = s.get(DsrRequest, out.request.id)
        assert row is not None
        assert row.subject_id == sid
        assert row.code_hash is not None
        assert code not in row.code_hash
        got = dsr.verify(s, out.request.id, code, actor="portal")
    assert got.state == "verified"


def test_wrong_codes_are_counted_and_limited(engine: Engine, calendar: WorkCalendar) -> None:
    out = _submit(engine, calendar, type="erasure", identifiers={"email": "nobody@example.com"})
    rid = out.request.id
    for left in (4, 3, 2, 1, 0):
        with transaction(engine) as s, pytest.raises(VerificationError, match=f"{left} attempt"):
            dsr.verify(s, rid, "00000000x", actor="portal")
    with transaction(engine) as s:
        assert s.get(DsrRequest, rid).code_attempts == 5  # type: ignore[union-attr]
    right = out.verification_code.get_secret_value()  # type: ignore[union-attr]
    with transaction(engine) as s, pytest.raises(VerificationError, match="too many"):
        dsr.verify(s, rid, right, actor="portal")
    with transaction(engine) as s:
        fresh = dsr.resend_code(s, rid, actor="portal")
    with transaction(engine) as s:
        assert dsr.verify(s, rid, fresh.get_secret_value(), actor="portal").state == "verified"


def test_expired_code(engine: Engine, calendar: WorkCalendar) -> None:
    out = _submit(engine, calendar, type="access", identifiers={"email": "x@example.com"})
    code = out.verification_code.get_secret_value()  # type: ignore[union-attr]
    later = utcnow() + dt.timedelta(days=2)
    with transaction(engine) as s, pytest.raises(VerificationError, match="expired"):
        dsr.verify(s, out.request.id, code, actor="portal", now=later)


def test_nothing_held_is_accepted_verified_and_answered(
    engine: Engine, calendar: WorkCalendar, tmp_path: object
) -> None:
    from pathlib import Path

    out = _submit(
        engine,
        calendar,
        type="access",
        identifiers={"email": "stranger@example.com"},
        verified=True,
    )
    assert not out.request.subject_found
    with transaction(engine) as s:
        dsr.approve(s, out.request.id, actor="dpo")
        assert dsr.plan(s, out.request.id).steps == []
    result = dsr.process_request(engine, out.request.id, export_dir=Path(str(tmp_path)))
    assert result.state == "completed"
    with transaction(engine) as s:
        shown = dsr.show(s, out.request.id).request
    assert shown.outcome["no_data_held"] is True


def test_state_machine_refuses_illegal_moves_and_audits_legal_ones(
    engine: Engine, calendar: WorkCalendar
) -> None:
    out = _submit(engine, calendar, type="erasure", identifiers={"email": "a@example.com"})
    rid = out.request.id
    with transaction(engine) as s, pytest.raises(IllegalTransitionError, match="identity_pending"):
        dsr.approve(s, rid, actor="dpo")
    with transaction(engine) as s:
        dsr.deny(s, rid, actor="dpo", reason="manifestly unfounded (Art. 12(5))")
    with transaction(engine) as s, pytest.raises(IllegalTransitionError, match="rejected"):
        dsr.approve(s, rid, actor="dpo")
    with transaction(engine) as s:
        moves = [
            (t.from_state, t.to_state, t.actor)
            for t in s.scalars(
                select(DsrTransition)
                .where(DsrTransition.request_id == rid)
                .order_by(DsrTransition.id)
            )
        ]
        audited = s.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "dsr.transition", AuditLog.target_id == str(rid))
        )
    assert moves == [
        (None, "received", "portal"),
        ("received", "identity_pending", "portal"),
        ("identity_pending", "rejected", "dpo"),
    ]
    assert audited == 2


@pytest.mark.parametrize(
    ("src", "dst"),
    [(a, b) for a in dsr.STATES for b in dsr.STATES if b not in dsr.TRANSITIONS[a]],
)
def test_transition_table_is_closed(src: str, dst: str) -> None:
    from govern.dsr.service import transition

    req = DsrRequest(id=uuid.uuid4(), state=src)
    with pytest.raises(IllegalTransitionError):
        transition(None, req, dst, actor="x")  # type: ignore[arg-type]


def test_extend_once_before_the_deadline(engine: Engine, calendar: WorkCalendar) -> None:
    received = dt.datetime(2026, 1, 31, 9, tzinfo=dt.UTC)
    out = _submit(
        engine,
        calendar,
        type="access",
        identifiers={"email": "a@example.com"},
        received_at=received,
        verified=True,
    )
    rid = out.request.id
    assert dt.datetime(2026, 3, 3, tzinfo=dt.UTC) == out.request.due_at
    with transaction(engine) as s, pytest.raises(DeadlineError, match="past its deadline"):
        dsr.extend(
            s,
            rid,
            reason="complex",
            actor="dpo",
            calendar=calendar,
            now=dt.datetime(2026, 3, 3, tzinfo=dt.UTC),
        )
    with transaction(engine) as s:
        got = dsr.extend(
            s,
            rid,
            reason="many systems involved",
            actor="dpo",
            calendar=calendar,
            now=dt.datetime(2026, 3, 2, 23, 59, tzinfo=dt.UTC),
        )
    assert got.extended
    assert dt.datetime(2026, 5, 1, tzinfo=dt.UTC) == got.due_at  # 30 April is a Thursday
    with transaction(engine) as s, pytest.raises(DeadlineError, match="already extended"):
        dsr.extend(
            s,
            rid,
            reason="again",
            actor="dpo",
            calendar=calendar,
            now=dt.datetime(2026, 3, 10, tzinfo=dt.UTC),
        )
    with transaction(engine) as s:
        row = s.get(DsrRequest, rid)
        assert row is not None
        assert "extension" in row.notified


def test_list_due_within_overdue_and_report(engine: Engine, calendar: WorkCalendar) -> None:
    now = utcnow()
    old = _submit(
        engine,
        calendar,
        type="access",
        identifiers={"email": "o@example.com"},
        received_at=now - dt.timedelta(days=40),
        verified=True,
    )
    soon = _submit(
        engine,
        calendar,
        type="erasure",
        identifiers={"email": "s@example.com"},
        received_at=now - dt.timedelta(days=27),
        verified=True,
    )
    fresh = _submit(
        engine, calendar, type="restriction", identifiers={"email": "f@example.com"}, verified=True
    )
    with transaction(engine) as s:
        overdue = [r.id for r in dsr.list_requests(s, overdue=True)]
        due7 = [r.id for r in dsr.list_requests(s, due_within=dt.timedelta(days=7))]
        every = [r.id for r in dsr.list_requests(s)]
        rep = dsr.report(s)
    assert [old.request.id] == overdue
    assert [soon.request.id] == due7
    assert {old.request.id, soon.request.id, fresh.request.id} == set(every)
    assert rep.total == 3
    assert rep.open_overdue == 1
    assert rep.completed == 0
    assert rep.on_time_rate is None


def test_bad_input_is_refused(engine: Engine, calendar: WorkCalendar) -> None:
    with pytest.raises(UnknownRequestError), transaction(engine) as s:
        dsr.show(s, uuid.uuid4())
    with pytest.raises(UsageError, match="request type"):
        _submit(engine, calendar, type="delete-me", identifiers={"email": "a@example.com"})
    with pytest.raises(UsageError, match="identifier"):
        _submit(engine, calendar, type="access", identifiers={})
    with pytest.raises(UsageError, match="jurisdiction"):
        _submit(
            engine, calendar, type="access", identifiers={"email": "a@x.io"}, jurisdiction="mars"
        )
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(DsrRequest)) == 0


@pytest.mark.parametrize(
    ("corrections", "message"),
    [
        ({"subjects.email": "not-an-email"}, "not an email"),
        ({"subjects.status": "x"}, "not a rectifiable"),
        ({"nope.email": "a@b.io"}, "not a rectifiable"),
        ({"subjects.birth_date": "31/12/1990"}, "ISO date"),
        ({"subjects.country": "de"}, "alpha-2"),
        ({"subjects.given_name": "   "}, "non-empty"),
        ({"invoices.billing_address": "Main St 1"}, "JSON object"),
        ({}, "at least one"),
    ],
)
def test_rectification_values_are_validated(
    engine: Engine, calendar: WorkCalendar, corrections: dict[str, object], message: str
) -> None:
    with pytest.raises(RectificationError, match=message) as info:
        _submit(
            engine,
            calendar,
            type="rectification",
            identifiers={"email": "a@example.com"},
            corrections=corrections,
        )
    for value in corrections.values():
        if isinstance(value, str) and len(value) > 2:
            assert value not in str(info.value)  # messages name the column, never the value
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(DsrRequest)) == 0
