"""Every right end to end: plans, erasure, access and portability packages, rectification,
restriction, objection and legal holds, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, String, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

from govern import dsr, holds, keys
from govern.db import load_models, transaction
from govern.domains import analytics, commerce, community, core
from govern.dsr import WorkCalendar
from govern.dsr.engine import pseudonym
from govern.keys.models import ShredProof, SubjectKey

from .conftest import approved_request, populate_subject


def _request(engine: Engine, cal: WorkCalendar, sid: uuid.UUID, type_: str, **kw: Any) -> uuid.UUID:
    with transaction(engine) as s:
        return approved_request(s, cal, sid, type_, **kw)


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    md = load_models()
    out = {}
    with engine.connect() as conn:
        for t in md.sorted_tables:
            if t.info.get("domain") in ("commerce", "analytics", "community") or t.name in (
                "subjects",
                "accounts",
                "subject_identities",
            ):
                pk = list(t.primary_key.columns)
                out[t.name] = [tuple(map(str, r)) for r in conn.execute(select(t).order_by(*pk))]
    return out


def _count(s: Any, model: Any, **where: Any) -> int:
    stmt = select(func.count()).select_from(model)
    for k, v in where.items():
        stmt = stmt.where(getattr(model, k) == v)
    return int(s.scalar(stmt))


def test_plan_changes_nothing(engine: Engine, calendar: WorkCalendar) -> None:
    with transaction(engine) as s:
        sid = populate_subject(s)
    rid = _request(engine, calendar, sid, "erasure")
    before = _dump(engine)
    with transaction(engine) as s:
        p = dsr.plan(s, rid)
    assert before == _dump(engine)
    by_table = {st.table: st for st in p.steps}
    assert by_table["analytics_events"].action == "delete"
    assert by_table["analytics_events"].rows == 5
    assert by_table["invoices"].action == "restrict"
    assert by_table["subjects"].action == "redact"
    assert any("Art. 17(3)(b)" in e for e in p.exceptions)
    # children before parents, the subject row last but the key destruction
    names = [st.table for st in p.steps]
    assert names.index("page_views") < names.index("analytics_sessions")
    assert names[-1] == "subject_keys"
    assert names.index("subjects") > names.index("accounts")
    assert names[0] == "consent_state"
    assert p.steps[0].action == "withdraw"
    assert p.steps[-1].action == "shred"
    assert p.steps[-1].rows == 1


def test_erasure_across_every_domain(
    engine: Engine, calendar: WorkCalendar, export_dir: Path
) -> None:
    with transaction(engine) as s:
        sid = populate_subject(s)
        other = populate_subject(s)
    rid = _request(engine, calendar, sid, "erasure")
    result = dsr.process_request(engine, rid, export_dir=export_dir)
    assert result.state == "completed"
    assert any("Art. 17(3)(b)" in e for e in result.exceptions)
    with transaction(engine) as s:
        subj = s.get(core.Subject, sid)
        assert subj is not None
        assert subj.email is None
        assert subj.given_name is None
        assert subj.status == "erased"
        assert subj.external_ref == pseudonym(sid, rid)
        for model in (core.Account, core.SubjectIdentity, commerce.Wallet, community.Membership):
            assert _count(s, model, subject_id=sid) == 0
        assert _count(s, analytics.AnalyticsEvent, subject_id=sid) == 0
        assert _count(s, analytics.AnalyticsSession, subject_id=sid) == 0
        other_session = s.scalars(
            select(analytics.AnalyticsSession).where(analytics.AnalyticsSession.subject_id == other)
        ).one()
        assert other_session.ip_address == "10.0.0.1"  # the other subject's key is intact
        # the subject's key is destroyed, with a proof; blind indexes no longer find them
        assert _count(s, SubjectKey, subject_id=sid) == 0
        assert _count(s, SubjectKey, subject_id=other) == 1
        assert s.scalar(select(func.count()).select_from(ShredProof)) == 1
        assert subj.email_index is None
        assert keys.lookup(s, core.Subject.external_ref, f"ext-{sid.hex[:10]}") == []
        # the twin of the replaced reference is the pseudonym's digest (one Core UPDATE
        # computes it as the ORM flush would)
        assert [subj] == keys.lookup(s, core.Subject.external_ref, pseudonym(sid, rid))
        pay = s.scalars(select(commerce.Payment).where(commerce.Payment.subject_id == sid)).one()
        assert pay.card_number is None
        assert pay.card_holder is None
        assert (
            s.scalars(
                select(commerce.Order.shipping_address).where(commerce.Order.subject_id == sid)
            ).one()
            is None
        )
        assert _count(s, community.Post, author_subject_id=sid) == 0
        # the invoice is kept (Art. 17(3)(b)) and restricted
        assert _count(s, commerce.Invoice, subject_id=sid) == 1
        assert dsr.is_restricted(s, sid, "invoices")
        assert not dsr.is_restricted(s, sid, "orders")
        # the other subject is untouched
        assert _count(s, analytics.AnalyticsEvent, subject_id=other) == 5
        assert s.get(core.Subject, other).email is not None  # type: ignore[union-attr]
        visible = s.scalars(
            dsr.exclude_restricted(
                select(commerce.Invoice.subject_id), commerce.Invoice.subject_id, "invoices"
            )
        ).all()
        assert [other] == visible


def test_erasure_under_legal_hold_is_a_recorded_exception(
    engine: Engine, calendar: WorkCalendar, export_dir: Path
) -> None:
    with transaction(engine) as s:
        sid = populate_subject(s)
        holds.add_hold(s, subject_ids=[sid], reason="litigation 2026-17", actor="counsel")
    rid = _request(engine, calendar, sid, "erasure")
    before = _dump(engine)
    result = dsr.process_request(engine, rid, export_dir=export_dir)
    assert result.state == "completed"
    assert any("Art. 17(3)(e)" in e for e in result.exceptions)
    assert before == _dump(engine)


@pytest.mark.parametrize("budget", [0, 3])
def test_hold_placed_after_planning_stops_destruction(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, budget: int
) -> None:
    """A hold placed after the first transaction (one step, or a few small ones) turns the
    destructive steps still pending into recorded exceptions."""
    with transaction(engine) as s:
        sid = populate_subject(s)
    rid = _request(engine, calendar, sid, "erasure")
    placed: list[int] = []

    def hold_after_first(seq: int, phase: str) -> None:
        if phase == "committed" and not placed:
            with transaction(engine) as s:
                holds.add_hold(s, subject_ids=[sid], reason="claim", actor="counsel")
            placed.append(seq)

    result = dsr.process_request(
        engine, rid, export_dir=export_dir, on_step=hold_after_first, rows_per_transaction=budget
    )
    assert result.state == "completed"
    with transaction(engine) as s:
        assert _count(s, analytics.AnalyticsEvent, subject_id=sid) == 5
        steps = dsr.show(s, rid).steps
    assert steps[0].status == "done"
    assert {st.status for st in steps[1:]} <= {"skipped", "kept", "done"}
    assert any(st.status == "skipped" for st in steps)


def _package(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        files = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    return manifest, files


@pytest.mark.parametrize("type_", ["access", "portability"])
def test_access_and_portability_packages(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, type_: str
) -> None:
    with transaction(engine) as s:
        sid = populate_subject(s, events=7)
        populate_subject(s)
    rid = _request(engine, calendar, sid, type_)
    result = dsr.process_request(engine, rid, export_dir=export_dir)
    assert result.state == "completed"
    assert result.export_path
    manifest, files = _package(Path(result.export_path))
    for f in manifest["files"]:
        assert hashlib.sha256(files[f["name"]]).hexdigest() == f["sha256"]
    events = json.loads(files["data/analytics_events.json"]) if type_ == "access" else None
    if type_ == "access":
        assert events is not None
        assert len(events) == 7
        assert {e["subject_id"] for e in events} == {str(sid)}
        pays = json.loads(files["data/payments.json"])
        # sealed columns are decrypted; card numbers stay tokens (last four digits shown)
        assert pays[0]["card_holder"] == "Ada Lovelace"
        assert pays[0]["card_number"].endswith("1111")
        assert "4111111111111111" not in json.dumps(pays)
    else:
        assert "data/analytics_events.json" not in files  # observed, not provided, data
    subj = json.loads(files["data/subjects.json"])
    assert [str(sid)] == [r["id"] for r in subj]
    rows = list(csv.reader(io.StringIO(files["data/subjects.csv"].decode())))
    assert rows[0][0] == "id"
    assert rows[1][0] == str(sid)
    assert "data/dsr_requests.json" not in files
    with transaction(engine) as s:
        shown = dsr.export_package(s, rid, out=export_dir / "copy.zip")
    assert shown.sha256 == hashlib.sha256(Path(shown.path).read_bytes()).hexdigest()
    assert not (export_dir / ".staging" / f"{rid}.jsonl").exists()  # staged rows removed


def test_packages_staged_in_memory_and_on_disk_are_the_same(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small request's rows stay in memory and its zip is built there; past the size
    bounds the rows go to the staging file mid-transaction and the zip is written as it is
    built. Both give the same members (same bytes, same checksums) and a recorded package
    whose checksum is the file's; no staged rows are left either way."""
    from govern.dsr import engine as dsr_engine

    with transaction(engine) as s:
        sid = populate_subject(s, events=40)
    packages = []
    for stage_bytes, zip_bytes in ((None, None), (64, 0)):
        if stage_bytes is not None:
            monkeypatch.setattr(dsr_engine, "STAGE_IN_MEMORY", stage_bytes)
            monkeypatch.setattr(dsr_engine, "ZIP_IN_MEMORY", zip_bytes)
        rid = _request(engine, calendar, sid, "access")
        result = dsr.process_request(engine, rid, export_dir=export_dir)
        assert result.export_path
        path = Path(result.export_path)
        with transaction(engine) as s:
            shown = dsr.show(s, rid).request
        assert shown.outcome["package"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        manifest, files = _package(path)
        assert manifest["request_id"] == str(rid)
        packages.append(({f["name"]: f["sha256"] for f in manifest["files"]}, files))
        assert not (export_dir / ".staging" / f"{rid}.jsonl").exists()
        # the staging folder exists once a staging file was written
        assert (export_dir / ".staging").exists() == (stage_bytes is not None)
    (mem_sums, mem_files), (disk_sums, disk_files) = packages
    assert len(mem_files) > 10
    assert mem_sums == disk_sums
    assert mem_files == disk_files


def test_rectification_applies_and_audits(
    engine: Engine, calendar: WorkCalendar, export_dir: Path
) -> None:
    with transaction(engine) as s:
        sid = populate_subject(s)
        old_email = s.get(core.Subject, sid).email  # type: ignore[union-attr]
    rid = _request(
        engine,
        calendar,
        sid,
        "rectification",
        corrections={"subjects.email": "ada@new.example", "subjects.birth_date": "1991-01-02"},
    )
    assert dsr.process_request(engine, rid, export_dir=export_dir).state == "completed"
    with transaction(engine) as s:
        subj = s.get(core.Subject, sid)
        assert subj is not None
        assert subj.email == "ada@new.example"
        assert str(subj.birth_date) == "1991-01-02"
        # the blind index follows the corrected value
        assert [subj] == keys.lookup(s, core.Subject.email, "ada@new.example")
        assert keys.lookup(s, core.Subject.email, old_email) == []
        steps = [
            a.details
            for a in s.scalars(select(core.AuditLog).where(core.AuditLog.action == "dsr.step"))
        ]
        from govern.dsr.models import DsrRequest

        req = s.get(DsrRequest, rid)
        assert req is not None
    assert steps == [
        {"seq": 1, "table": "subjects", "action": "rectify", "status": "done", "rows": 1}
    ]
    assert "ada@new.example" not in json.dumps(steps)
    assert req.corrections == {"subjects.email": "(applied)", "subjects.birth_date": "(applied)"}


@pytest.mark.parametrize(("type_", "tables"), [("restriction", None), ("objection", "analytics")])
def test_restriction_and_objection(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, type_: str, tables: str | None
) -> None:
    with transaction(engine) as s:
        sid = populate_subject(s)
    rid = _request(engine, calendar, sid, type_)
    assert dsr.process_request(engine, rid, export_dir=export_dir).state == "completed"
    with transaction(engine) as s:
        assert dsr.is_restricted(s, sid, "analytics_events")
        assert dsr.is_restricted(s, sid, "orders") == (type_ == "restriction")
        q = dsr.exclude_restricted(
            select(analytics.AnalyticsEvent.id),
            analytics.AnalyticsEvent.subject_id,
            "analytics_events",
        )
        assert s.scalars(q).all() == []
        assert dsr.lift_restrictions(s, sid, actor="dpo", reason="accuracy confirmed") > 0
        assert len(s.scalars(q).all()) == 5


def _host_table(md: Any, name: str) -> Any:
    """A host's table linked to subjects (no DSR actions yet), added to ``md``."""
    from sqlalchemy import Column, ForeignKey, Table, Uuid

    from govern.datamap import governed

    return Table(
        name,
        md,
        Column("id", Uuid, primary_key=True),
        Column("subject_id", Uuid, ForeignKey("subjects.id")),
        Column("body", String(100)),
        info=governed(owner="o", steward="s", subject_link="subject_id", description="d"),
    )


def test_register_a_host_table(engine: Engine, calendar: WorkCalendar) -> None:
    from govern.datamap.actions import Redact, register_actions, unregister_actions
    from govern.errors import UsageError

    md = load_models()
    t = _host_table(md, "host_tickets_test")
    try:
        assert "host_tickets_test" in dsr.dsr_map(md).unmapped
        register_actions(t, erasure=Redact({"body": "[erased]"}), rectifiable=("body",))
        m = dsr.dsr_map(md)
        assert m.ok
        entry = next(e for e in m.tables if e.table == "host_tickets_test")
        assert entry.erasure == "redact body=constant"
        with pytest.raises(UsageError, match="LegalException"):
            register_actions(t, erasure="keep")
    finally:
        unregister_actions("host_tickets_test")
        md.remove(t)


def test_erasure_audit_trail_keeps_the_order_things_happened_in(
    engine: Engine, calendar: WorkCalendar, export_dir: Path
) -> None:
    """The worker writes a transaction's audit rows together, except that what came before
    a shred (the claim's transition) is written before the shred audits itself: by id the
    trail reads claim, crypto.shred, steps, completion, and its times never go back."""
    with transaction(engine) as s:
        sid = populate_subject(s, events=2)
        rid = approved_request(s, calendar, sid, "erasure")
        start = s.scalar(select(func.max(core.AuditLog.id))) or 0
    assert dsr.process_request(engine, rid, export_dir=export_dir).state == "completed"
    with transaction(engine) as s:
        rows = s.execute(
            select(core.AuditLog.action, core.AuditLog.occurred_at, core.AuditLog.details)
            .where(core.AuditLog.id > start)
            .order_by(core.AuditLog.id)
        ).all()
    actions = [r.action for r in rows]
    assert actions[0] == "dsr.transition"
    assert rows[0].details["to"] == "in_progress"
    assert actions.index("crypto.shred") < actions.index("dsr.step")
    assert actions[-1] == "dsr.transition"
    assert rows[-1].details["to"] == "completed"
    times = [r.occurred_at for r in rows]
    assert times == sorted(times)


def test_redactions_of_tables_with_orm_update_behaviour_go_through_the_orm() -> None:
    """A host's mapped table with a version counter, ``@validates`` or update listeners is
    redacted through an ORM flush (those need it); govern's own tables have none and get one
    Core UPDATE per table."""
    from govern.db import CoreBase
    from govern.dsr.engine import _mapper_behaviour

    class Base(DeclarativeBase):
        pass

    class Versioned(Base):
        __tablename__ = "versioned_test"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        version: Mapped[int] = mapped_column(Integer)
        __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    class Validated(Base):
        __tablename__ = "validated_test"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        body: Mapped[str] = mapped_column(String(10))

        @validates("body")
        def _check(self, _key: str, value: str) -> str:
            return value

    class Listened(Base):
        __tablename__ = "listened_test"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)

    class Plain(Base):
        __tablename__ = "plain_test"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)

    event.listen(Listened, "before_update", lambda *_: None)
    assert _mapper_behaviour(Versioned)
    assert _mapper_behaviour(Validated)
    assert _mapper_behaviour(Listened)
    assert not _mapper_behaviour(Plain)
    load_models()
    assert not any(_mapper_behaviour(m.class_) for m in CoreBase.registry.mappers)


def test_linked_tables_follow_the_registry() -> None:
    """Plans see a host table's actions as soon as they are registered, replaced or
    forgotten (the table list is cached per registry version)."""
    from govern.datamap.actions import Redact, register_actions, unregister_actions
    from govern.dsr.engine import linked_tables

    md = load_models()
    t = _host_table(md, "host_notes_test")

    def erasure() -> str | None:
        return {x.name: a.erasure for x, a in linked_tables(md)}.get("host_notes_test")

    try:
        assert erasure() is None  # no actions yet
        register_actions(t, erasure="delete")
        assert erasure() == "delete"
        register_actions(t, erasure=Redact({"body": "[erased]"}))
        assert erasure() == "redact"
        unregister_actions("host_notes_test")
        assert erasure() is None
    finally:
        unregister_actions("host_notes_test")
        md.remove(t)


def test_shipped_map_is_complete() -> None:
    m = dsr.dsr_map()
    assert m.ok, (m.unmapped, m.problems)
    names = {e.table for e in m.tables}
    assert {"subjects", "invoices", "analytics_events", "posts", "orders"} <= names


def test_erasure_removes_the_subjects_retention_quarantine_copies(
    engine: Engine, calendar: WorkCalendar
) -> None:
    """Rows a retention run quarantined stay restorable for a while; erasure must not wait."""
    import datetime as dt

    from govern.retention.models import QuarantineRow, Run

    with transaction(engine) as s:
        sid = populate_subject(s)
        other = populate_subject(s)
        run = Run(
            policy_name="p",
            content_hash="h",
            table_name="posts",
            action="delete",
            status="completed",
            cutoff=dt.datetime.now(dt.UTC),
            planned_rows=2,
            triggered_by="test",
        )
        s.add(run)
        s.flush()
        for subject in (sid, other):
            s.add(
                QuarantineRow(
                    run_id=run.id,
                    batch=1,
                    table_name="posts",
                    row_key=str(subject),
                    subject_id=subject,
                    row={"x": "sealed"},
                )
            )
    rid = _request(engine, calendar, sid, "erasure")
    with transaction(engine) as s:
        steps = {(st.table, st.action, st.rows) for st in dsr.plan(s, rid).steps}
    assert ("retention_quarantine", "delete", 1) in steps


def _block_deletes(engine: Engine, table: str) -> None:
    """A database trigger that refuses deletes from ``table`` (as a host's own rule might)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER block_{table} BEFORE DELETE ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'deletes refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'deletes refused'; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER block_{table} BEFORE DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_delete()"
            )


@pytest.mark.parametrize("budget", [0, dsr.DEFAULT_ROWS_PER_TRANSACTION])
def test_a_failing_step_fails_the_request_and_rolls_back_its_transaction(
    engine: Engine, calendar: WorkCalendar, export_dir: Path, budget: int
) -> None:
    """A step the database refuses: its transaction rolls back (with the claim, when it is
    the first), the request is failed with the step and error class (never the message),
    and the steps of earlier, committed transactions stay done."""
    with transaction(engine) as s:
        sid = populate_subject(s)
    rid = _request(engine, calendar, sid, "erasure")
    _block_deletes(engine, "analytics_events")
    result = dsr.process_request(engine, rid, export_dir=export_dir, rows_per_transaction=budget)
    assert result.state == "failed"
    with transaction(engine) as s:
        shown = dsr.show(s, rid)
        assert shown.request.outcome["error"].endswith("Error")
        assert "refused" not in json.dumps(shown.request.outcome)
        failing = next(st for st in shown.steps if st.table == "analytics_events")
        assert shown.request.outcome["error"].startswith(f"step {failing.seq}:")
        assert failing.status == "pending"
        assert _count(s, analytics.AnalyticsEvent, subject_id=sid) == 5
        done = {st.seq for st in shown.steps if st.status == "done"}
        if budget == 0:
            # the steps before it committed one by one (withdraw, redactions, deletes...)
            assert done
            assert max(done) < failing.seq
        else:
            # all in one transaction with the claim: nothing of it stayed
            assert done == set()
            assert s.get(core.Subject, sid).email is not None  # type: ignore[union-attr]
        assert [t.to_state for t in shown.transitions][-2:] == ["in_progress", "failed"]
