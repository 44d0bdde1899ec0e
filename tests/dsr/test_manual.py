"""Manual steps: personal data outside the database, confirmed by an operator.

A request covering a manual location stops in ``awaiting_action`` at that step; a
confirmation marks it done and queues the request again; the worker resumes after it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from govern import dsr, holds
from govern.datamap.actions import (
    RIGHTS,
    manual_locations,
    register_manual_location,
    unregister_manual_location,
)
from govern.db import transaction
from govern.domains import analytics, core
from govern.dsr import WorkCalendar
from govern.dsr.models import DsrRequest, DsrStep, DsrTransition
from govern.errors import (
    DuplicateManualLocationError,
    IllegalTransitionError,
    ManualLocationError,
    ManualStepError,
    UnknownManualLocationError,
    UnknownRequestError,
)
from govern.events import Event, HookRegistry, OutboxEvent

from .conftest import approved_request, populate_subject
from .test_resume import _kill_at, _step_audits, package_of, resume


@pytest.fixture
def archive() -> Iterator[str]:
    """A manual location for every right, forgotten after the test."""
    register_manual_location(
        "paper_archive", description="signed contracts, Berlin office", owner="office@example.com"
    )
    yield "paper_archive"
    unregister_manual_location("paper_archive")


def _request(engine: Engine, cal: WorkCalendar, type_: str = "erasure") -> tuple[uuid.UUID, Any]:
    with transaction(engine) as s:
        sid = populate_subject(s, events=3)
        return sid, approved_request(s, cal, sid, type_)


def _steps(engine: Engine, rid: uuid.UUID) -> list[dsr.StepOut]:
    with transaction(engine) as s:
        return dsr.show(s, rid).steps


def _snapshot(engine: Engine, rid: uuid.UUID) -> tuple[Any, ...]:
    """Everything a refused confirmation must leave as it was."""
    with transaction(engine) as s:
        req = s.get(DsrRequest, rid)
        assert req is not None
        steps = s.execute(
            select(DsrStep.seq, DsrStep.status, DsrStep.done_by, DsrStep.done_at)
            .where(DsrStep.request_id == rid)
            .order_by(DsrStep.seq)
        ).all()
        transitions = s.scalars(
            select(DsrTransition.id).where(DsrTransition.request_id == rid)
        ).all()
        audits = s.scalars(
            select(core.AuditLog.id).where(core.AuditLog.target_id == str(rid))
        ).all()
        return req.state, req.claimed_by, tuple(steps), tuple(transitions), tuple(audits)


# --- the registry ---------------------------------------------------------------------------


def test_rights_are_the_request_types() -> None:
    assert dsr.REQUEST_TYPES == RIGHTS


@pytest.mark.parametrize("name", ["Paper", "1archive", "paper-archive", "", "a" * 64, "pä"])
def test_location_names_are_lowercase_identifiers(name: str) -> None:
    with pytest.raises(ManualLocationError, match="lowercase identifier"):
        register_manual_location(name, description="d", owner="o")
    assert [m for m in manual_locations() if m.name == name] == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"rights": ("erasure", "forget")}, "unknown right"),
        ({"rights": ()}, "at least one right"),
        ({"description": " "}, "description"),
        ({"owner": ""}, "owner"),
    ],
)
def test_bad_registrations_are_refused(kw: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"description": "d", "owner": "o", **kw}
    with pytest.raises(ManualLocationError, match=message):
        register_manual_location("crm_export", **args)
    assert "crm_export" not in {m.name for m in manual_locations()}


def test_duplicates_and_unknown_names(archive: str) -> None:
    with pytest.raises(DuplicateManualLocationError):
        register_manual_location(archive, description="other", owner="o")
    assert [m.description for m in manual_locations() if m.name == archive] == [
        "signed contracts, Berlin office"
    ]
    with pytest.raises(UnknownManualLocationError):
        unregister_manual_location("no_such_place")


def test_rights_filter_and_map(archive: str) -> None:
    register_manual_location(
        "helpdesk", description="tickets in a SaaS tool", owner="support", rights=["access"]
    )
    try:
        assert [m.name for m in manual_locations("erasure")] == [archive]
        assert [m.name for m in manual_locations("access")] == ["helpdesk", archive]
        shown = {m.name: m for m in dsr.dsr_map().manual}
        assert shown["helpdesk"].rights == ["access"]
        assert shown[archive].rights == list(RIGHTS)
        assert shown[archive].owner == "office@example.com"
    finally:
        unregister_manual_location("helpdesk")


# --- plans ----------------------------------------------------------------------------------


def test_manual_steps_in_plans(engine: Engine, calendar: WorkCalendar, archive: str) -> None:
    register_manual_location(
        "helpdesk", description="tickets in a SaaS tool", owner="support", rights=["access"]
    )
    try:
        _, erasure = _request(engine, calendar, "erasure")
        _, access = _request(engine, calendar, "access")
        _, restriction = _request(engine, calendar, "restriction")
        with transaction(engine) as s:
            e_steps = dsr.plan(s, erasure).steps
            a_steps = dsr.plan(s, access).steps
            r_steps = dsr.plan(s, restriction).steps
    finally:
        unregister_manual_location("helpdesk")
    # erasure: after every automated step but before the final shred of the subject key
    assert [(st.table, st.action) for st in e_steps[-2:]] == [
        (archive, "manual"),
        ("subject_keys", "shred"),
    ]
    assert [st.table for st in e_steps if st.action == "manual"] == [archive]
    # access: before the package; a location limited to access is only in access plans
    assert [(st.table, st.action) for st in a_steps[-3:]] == [
        ("helpdesk", "manual"),
        (archive, "manual"),
        (None, "package"),
    ]
    assert [(st.table, st.action) for st in r_steps[-1:]] == [(archive, "manual")]
    assert "helpdesk" not in {st.table for st in r_steps}


def test_manual_steps_are_never_grouped_or_run() -> None:
    from govern.dsr.engine import empty_when_planned, run_step

    assert not empty_when_planned("manual", 0)
    with pytest.raises(ValueError, match="manual"):
        run_step(None, None, "paper_archive", "manual")  # type: ignore[arg-type]


# --- execution and confirmation -------------------------------------------------------------


def test_erasure_waits_for_the_operator_then_completes(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, archive: str
) -> None:
    sid, rid = _request(engine, calendar)
    seen: list[Event] = []
    hooks = HookRegistry()
    hooks.register("govern.dsr.awaiting_action", seen.append)

    result = dsr.work(engine, export_dir=export_dir, once=True, worker="w1", hooks=hooks)
    (first,) = result.processed
    assert first.state == "awaiting_action"
    assert first.ok
    steps = _steps(engine, rid)
    manual = next(st for st in steps if st.action == "manual")
    assert (first.awaiting_step, first.awaiting_location) == (manual.seq, archive)
    assert first.steps_total == len(steps)
    # every automated step before it ran; the shred after it did not
    assert all(st.status in ("done", "kept") for st in steps if st.seq < manual.seq)
    assert [(st.action, st.status) for st in steps if st.seq >= manual.seq] == [
        ("manual", "pending"),
        ("shred", "pending"),
    ]
    with transaction(engine) as s:
        assert (
            s.scalar(
                select(analytics.AnalyticsEvent.id).where(
                    analytics.AnalyticsEvent.subject_id == sid
                )
            )
            is None
        )
        req = s.get(DsrRequest, rid)
        assert req is not None
        assert (req.state, req.claimed_by, req.lease_expires_at) == ("awaiting_action", None, None)
        started = req.started_at
        last = dsr.show(s, rid).transitions[-1]
        events = s.scalars(
            select(OutboxEvent.type).where(OutboxEvent.aggregateid == str(rid))
        ).all()
    assert (last.from_state, last.to_state, last.actor) == ("in_progress", "awaiting_action", "w1")
    assert last.reason is not None
    assert f"manual step {manual.seq} ({archive})" in last.reason
    assert "govern.dsr.awaiting_action" in events
    assert [e.data["location"] for e in seen] == [archive]
    assert [e.data["step"] for e in seen] == [manual.seq]

    # the queue moves on: nothing else is claimable, the waiting request is not taken again
    again = dsr.work(engine, export_dir=export_dir, once=True, worker="w2")
    assert again.processed == []

    with transaction(engine) as s:
        out = dsr.confirm_manual_step(
            s, rid, seq=manual.seq, actor="clerk", note="shredded folder 12"
        )
    assert out.state == "approved"

    done = dsr.work(engine, export_dir=export_dir, once=True, worker="w3")
    assert [p.state for p in done.processed] == ["completed"]
    assert done.processed[0].steps_run == 1  # only the shred: nothing before it ran again
    steps = _steps(engine, rid)
    assert {st.status for st in steps} <= {"done", "kept"}
    assert [(st.status, st.done_by) for st in steps if st.seq == manual.seq] == [("done", "clerk")]
    audits = _step_audits(engine, rid)
    assert set(audits.values()) == {1}
    assert set(audits) == {st.seq for st in steps if st.status == "done"}
    with transaction(engine) as s:
        req = s.get(DsrRequest, rid)
        assert req is not None
        assert req.started_at == started
        trail = [(t.from_state, t.to_state) for t in dsr.show(s, rid).transitions]
        note = s.scalars(
            select(core.AuditLog.details).where(
                core.AuditLog.action == "dsr.step",
                core.AuditLog.target_id == str(rid),
                core.AuditLog.actor == "clerk",
            )
        ).one()
    assert trail[-4:] == [
        ("in_progress", "awaiting_action"),
        ("awaiting_action", "approved"),
        ("approved", "in_progress"),
        ("in_progress", "completed"),
    ]
    assert note == {
        "seq": manual.seq,
        "table": archive,
        "action": "manual",
        "status": "done",
        "rows": 0,
        "note": "shredded folder 12",
    }


def test_refused_confirmations_change_nothing(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, archive: str
) -> None:
    _, rid = _request(engine, calendar)
    # not awaiting yet: approved
    before = _snapshot(engine, rid)
    with pytest.raises(ManualStepError, match="approved"), transaction(engine) as s:
        dsr.confirm_manual_step(s, rid, seq=1, actor="clerk")
    assert _snapshot(engine, rid) == before

    dsr.process_request(engine, rid, export_dir=export_dir)
    manual = next(st for st in _steps(engine, rid) if st.action == "manual")
    before = _snapshot(engine, rid)
    for kw in (
        {"seq": manual.seq + 1},
        {"seq": 1},
        {"location": "helpdesk"},
        {"seq": manual.seq, "location": "helpdesk"},
    ):
        with (
            pytest.raises(ManualStepError, match=f"awaits manual step {manual.seq}"),
            transaction(engine) as s,
        ):
            dsr.confirm_manual_step(s, rid, actor="clerk", **kw)
        assert _snapshot(engine, rid) == before
    with pytest.raises(UnknownRequestError), transaction(engine) as s:
        dsr.confirm_manual_step(s, uuid.uuid4(), seq=manual.seq, actor="clerk")
    with pytest.raises(ManualStepError, match="confirm"):
        dsr.process_request(engine, rid, export_dir=export_dir)
    # approving would only loop back to the same step
    with pytest.raises(ManualStepError, match="confirm"), transaction(engine) as s:
        dsr.approve(s, rid, actor="dpo")
    assert _snapshot(engine, rid) == before

    with transaction(engine) as s:
        dsr.confirm_manual_step(s, rid, location=archive, actor="clerk")
    after = _snapshot(engine, rid)
    # twice: the request is approved again, no manual step awaits
    with pytest.raises(IllegalTransitionError), transaction(engine) as s:
        dsr.confirm_manual_step(s, rid, seq=manual.seq, actor="clerk")
    assert _snapshot(engine, rid) == after


def test_still_open_and_overdue_while_waiting(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, archive: str
) -> None:
    _, rid = _request(engine, calendar)
    dsr.process_request(engine, rid, export_dir=export_dir)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with transaction(engine) as s:
        s.execute(update(DsrRequest).where(DsrRequest.id == rid).values(due_at=past))
    with transaction(engine) as s:
        overdue = dsr.list_requests(s, overdue=True)
        sent = dsr.check_deadlines(s)
    assert [(r.id, r.state, r.overdue) for r in overdue if r.id == rid] == [
        (rid, "awaiting_action", True)
    ]
    assert sent["overdue"] >= 1


def test_hold_placed_while_planned_skips_the_manual_erasure(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, archive: str
) -> None:
    sid, rid = _request(engine, calendar)
    placed: list[int] = []

    def hold_after_first(seq: int, phase: str) -> None:
        if phase == "committed" and not placed:
            with transaction(engine) as s:
                holds.add_hold(s, subject_ids=[sid], reason="claim", actor="counsel")
            placed.append(seq)

    result = dsr.process_request(engine, rid, export_dir=export_dir, on_step=hold_after_first)
    assert result.state == "completed"
    manual = [st for st in _steps(engine, rid) if st.table == archive]
    assert [(st.action, st.status) for st in manual] == [("manual", "skipped")]


def test_erasure_of_a_held_subject_keeps_the_manual_location(
    engine: Engine, calendar: WorkCalendar, archive: str
) -> None:
    sid, rid = _request(engine, calendar)
    with transaction(engine) as s:
        holds.add_hold(s, subject_ids=[sid], reason="claim", actor="counsel")
        steps = dsr.plan(s, rid).steps
    assert [(st.action, st.exception) for st in steps if st.table == archive] == [
        ("keep", "Art. 17(3)(e): subject under a legal hold")
    ]


@pytest.mark.parametrize("phase", ["executed", "committed"])
def test_killed_after_confirmation_resumes_without_rerunning(
    engine: Engine,
    migrated_url: str,
    kek: str,
    calendar: WorkCalendar,
    export_dir: Path,
    archive: str,
    phase: str,
) -> None:
    _, rid = _request(engine, calendar)
    dsr.process_request(engine, rid, export_dir=export_dir, worker="first")
    steps = _steps(engine, rid)
    manual = next(st for st in steps if st.action == "manual")
    with transaction(engine) as s:
        dsr.confirm_manual_step(s, rid, seq=manual.seq, actor="clerk")
    # a worker (another process) resumes after the confirmation and is killed at the shred
    assert _kill_at(migrated_url, kek, rid, export_dir, manual.seq + 1, phase) == -9
    # the shred is the last step: its transaction also completes the request
    result = resume(engine, rid, export_dir, finished=phase == "committed")
    if result is not None:
        assert result.steps_run == 1  # the shred, once
    audits = _step_audits(engine, rid)
    assert set(audits.values()) == {1}
    assert set(audits) == {st.seq for st in steps if st.action != "keep"}
    with transaction(engine) as s:
        kinds = [(t.from_state, t.to_state) for t in dsr.show(s, rid).transitions]
    assert kinds.count(("in_progress", "awaiting_action")) == 1


def test_access_with_a_manual_step_packages_after_the_confirmation(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, archive: str
) -> None:
    """Reads run and commit, the worker stops at the manual step (the staged rows wait in
    the export folder), and the worker that resumes after the confirmation packages them."""
    _, rid = _request(engine, calendar, "access")
    first = dsr.process_request(engine, rid, export_dir=export_dir, worker="first")
    assert first.state == "awaiting_action"
    assert (export_dir / ".staging" / f"{rid}.jsonl").stat().st_size > 0
    steps = _steps(engine, rid)
    reads = [st for st in steps if st.action == "read"]
    assert {st.status for st in reads} == {"done"}
    manual = next(st for st in steps if st.action == "manual")
    with transaction(engine) as s:
        dsr.confirm_manual_step(s, rid, seq=manual.seq, actor="clerk")
    manifest, events, _ = package_of(engine, rid, export_dir, worker="second")
    assert manifest["tables"] == len(reads)
    assert len(events) == 3
    assert set(_step_audits(engine, rid).values()) == {1}  # no read ran twice
    assert not (export_dir / ".staging" / f"{rid}.jsonl").exists()
