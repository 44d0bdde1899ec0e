"""Retention service functions on real SQLite and PostgreSQL, without a scheduler."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from govern import holds
from govern.db import transaction
from govern.domains.analytics import AnalyticsEvent
from govern.errors import NotApprovedError, RestoreWindowError, UnknownRunError, UsageError
from govern.events.models import OutboxEvent
from govern.retention import (
    LogChannel,
    WebhookChannel,
    dispatch,
    execute_run,
    plan_policy,
    policy_lock,
    purge_quarantine,
    rollback,
)
from govern.retention.models import Alert, QuarantineRow, Run
from govern.retention.policy import Condition, Policy
from govern.types.utc import utcnow
from tests.conftest import Databases
from tests.helpers import keyed_engine
from tests.retention.helpers import approved, events_policy, raw, seed, seed_posts


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    eng = keyed_engine(migrated_url)
    yield eng
    eng.dispose()


def _count(engine: Engine, stmt: Any) -> int:
    with engine.connect() as c:
        return int(c.execute(stmt).scalar_one())


def test_plan_changes_nothing_and_run_needs_approval(engine: Engine) -> None:
    seed(engine, 40, random.Random(1))
    before = raw(engine, "analytics_events")
    p = events_policy()
    with transaction(engine) as s:
        planned = plan_policy(s, p)
    assert planned.rows > 0
    assert not planned.approved
    assert raw(engine, "analytics_events") == before
    assert _count(engine, select(func.count()).select_from(Run)) == 0
    with pytest.raises(NotApprovedError, match="'events' version"):
        execute_run(engine, p, actor="t")
    approved(engine, p)
    edited = events_policy(period="P12M")
    with pytest.raises(NotApprovedError):
        execute_run(engine, edited, actor="t")


def test_run_matches_plan_emits_tombstones_and_rolls_back_identically(engine: Engine) -> None:
    seed(engine, 60, random.Random(2))
    p = events_policy()
    approved(engine, p)
    before = raw(engine, "analytics_events")
    with transaction(engine) as s:
        planned = plan_policy(s, p)
    out = execute_run(engine, p, actor="t")
    assert (out.status, out.planned_rows, out.processed_rows) == (
        "completed",
        planned.rows,
        planned.rows,
    )
    assert out.batches == -(-planned.rows // 7)
    left = _count(engine, select(func.count()).select_from(AnalyticsEvent))
    assert left == len(before) - planned.rows
    tomb = select(func.count()).where(
        OutboxEvent.type == "govern.row.deleted", OutboxEvent.aggregatetype == "analytics_events"
    )
    assert _count(engine, tomb) == planned.rows
    with transaction(engine) as s:
        assert plan_policy(s, p).rows == 0
        result = rollback(s, out.id, actor="t")  # type: ignore[arg-type]
    assert result.restored == {"analytics_events": planned.rows}
    assert raw(engine, "analytics_events") == before
    restored = select(func.count()).where(OutboxEvent.type == "govern.row.restored")
    assert _count(engine, restored) == planned.rows
    with transaction(engine) as s, pytest.raises(RestoreWindowError, match="rolled_back"):
        rollback(s, out.id, actor="t")  # type: ignore[arg-type]


def test_cascade_and_anonymise_roll_back_byte_identical(engine: Engine) -> None:
    seed(engine, 5, random.Random(3))
    seed_posts(engine)
    posts = Policy(
        name="posts",
        table="posts",
        timestamp_column="deleted_at",
        period="P30D",
        filter=(Condition(column="deleted_at", op="is_not_null"),),
        owner="o",
        purpose="p",
    )
    sessions = Policy(
        name="sessions",
        table="analytics_sessions",
        timestamp_column="started_at",
        period="P30D",
        action="anonymise",
        columns=("ip_address", "user_agent"),
        owner="o",
        purpose="p",
    )
    approved(engine, posts, sessions)
    snap = {t: raw(engine, t) for t in ("posts", "comments", "analytics_sessions")}
    out_posts = execute_run(engine, posts, actor="t")
    out_sess = execute_run(engine, sessions, actor="t")
    assert (out_posts.processed_rows, out_posts.cascaded_rows) == (3, 3)
    assert len(raw(engine, "comments")) == 3
    assert out_sess.processed_rows == 1
    assert [r[4:6] for r in raw(engine, "analytics_sessions")] == [(None, None)]
    assert execute_run(engine, sessions, actor="t").processed_rows == 0  # not twice
    with transaction(engine) as s:
        rollback(s, out_posts.id, actor="t")  # type: ignore[arg-type]
        rollback(s, out_sess.id, actor="t")  # type: ignore[arg-type]
    assert snap == {t: raw(engine, t) for t in snap}


def test_held_subjects_are_never_touched(engine: Engine) -> None:
    subjects = seed(engine, 80, random.Random(4))
    with transaction(engine) as s:
        holds.add_hold(s, subject_ids=[subjects[0]], reason="litigation", actor="legal")
    p = events_policy()
    approved(engine, p)
    held_old = select(func.count()).where(
        AnalyticsEvent.subject_id == subjects[0],
        AnalyticsEvent.occurred_at < p.cutoff(dt.datetime.now(dt.UTC)),
    )
    n_held = _count(engine, held_old)
    with transaction(engine) as s:
        planned = plan_policy(s, p)
    assert planned.excluded_by_holds == n_held > 0
    execute_run(engine, p, actor="t")
    assert _count(engine, held_old) == n_held


def test_circuit_breaker_aborts_alerts_and_override_is_recorded(engine: Engine) -> None:
    seed(engine, 50, random.Random(5))
    p = events_policy(max_rows_per_run=3)
    approved(engine, p)
    before = raw(engine, "analytics_events")
    out = execute_run(engine, p, actor="t")
    assert out.status == "aborted"
    assert not out.ok
    assert raw(engine, "analytics_events") == before
    with transaction(engine) as s:
        alert = s.scalars(select(Alert)).one()
        assert (alert.kind, alert.run_id) == ("circuit_breaker", out.id)
        ev = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "govern.retention.alert"))
        assert json.loads(ev.one().payload)["data"]["kind"] == "circuit_breaker"
    with pytest.raises(UsageError, match="both"):
        execute_run(engine, p, actor="t", override_by="ops")
    done = execute_run(engine, p, actor="t", override_by="ops", override_reason="backlog")
    assert done.status == "completed"
    assert done.override_by == "ops"


def test_unusual_volume_trips_against_previous_runs(engine: Engine) -> None:
    rng = random.Random(6)
    p = events_policy(period="P1D", max_growth_factor=2.0)
    approved(engine, p)
    for _ in range(3):
        seed(engine, 4, random.Random(rng.random()), subjects=0)
        with transaction(engine) as s:
            s.execute(
                AnalyticsEvent.__table__.update().values(
                    occurred_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
                )
            )
        assert execute_run(engine, p, actor="t").status == "completed"
    seed(engine, 40, rng, subjects=0)
    with transaction(engine) as s:
        s.execute(
            AnalyticsEvent.__table__.update().values(
                occurred_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            )
        )
    out = execute_run(engine, p, actor="t")
    assert out.status == "aborted"
    assert "unusual volume" in (out.detail or "")


def test_rollback_refuses_unknown_and_expired_runs(engine: Engine) -> None:
    seed(engine, 30, random.Random(7))
    p = events_policy()
    approved(engine, p)
    out = execute_run(engine, p, actor="t")
    assert out.restore_until is not None
    with transaction(engine) as s, pytest.raises(UnknownRunError):
        rollback(s, uuid.uuid4(), actor="t")
    later = out.restore_until + dt.timedelta(seconds=1)
    with transaction(engine) as s, pytest.raises(RestoreWindowError, match="window ended"):
        rollback(s, out.id, actor="t", now=later)  # type: ignore[arg-type]
    with transaction(engine) as s:
        assert purge_quarantine(s, actor="t").purged_rows == 0
        purged = purge_quarantine(s, actor="t", now=later)
    assert purged.purged_rows == out.processed_rows > 0
    assert _count(engine, select(func.count()).select_from(QuarantineRow)) == 0
    with transaction(engine) as s, pytest.raises(RestoreWindowError, match="purged"):
        rollback(s, out.id, actor="t")  # type: ignore[arg-type]


def test_purge_takes_only_runs_whose_window_passed(engine: Engine) -> None:
    seed(engine, 60, random.Random(11))
    short = events_policy(name="short", period="P25M", restore_window="P10D")
    long = events_policy(name="long", period="P13M", restore_window="P60D")
    kept = events_policy(name="kept", period="P6M", action="archive_then_delete")
    approved(engine, short, long, kept)
    runs = [execute_run(engine, p, actor="t") for p in (short, long, kept)]
    assert all(r.processed_rows > 0 for r in runs)
    later = utcnow() + dt.timedelta(days=20)
    with transaction(engine) as s:
        purged = purge_quarantine(s, actor="t", now=later)
    assert (purged.purged_rows, purged.runs) == (runs[0].processed_rows, [runs[0].id])
    with transaction(engine) as s:
        left = dict(
            s.execute(
                select(QuarantineRow.run_id, func.count()).group_by(QuarantineRow.run_id)
            ).all()
        )
        statuses = [s.get_one(Run, r.id).status for r in runs]
    assert left == {runs[1].id: runs[1].processed_rows, runs[2].id: runs[2].processed_rows}
    assert statuses == ["purged", "completed", "completed"]


def test_policy_lock_is_exclusive(engine: Engine) -> None:
    with policy_lock(engine, "a") as first:
        assert first is not None
        with policy_lock(engine, "a") as second, policy_lock(engine, "b") as other:
            assert second is None
            assert other is not None
    with policy_lock(engine, "a") as again:
        assert again is not None


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed_value=st.integers(0, 10_000),
    n=st.integers(0, 60),
    batch=st.integers(1, 20),
    type_filter=st.sampled_from([None, "view"]),
    hold=st.booleans(),
)
def test_simulation_counts_equal_the_run(
    databases: Databases,
    backend: str,
    seed_value: int,
    n: int,
    batch: int,
    type_filter: str | None,
    hold: bool,
) -> None:
    eng = keyed_engine(databases.migrated(backend))
    try:
        subjects = seed(eng, n, random.Random(seed_value))
        if hold:
            with transaction(eng) as s:
                holds.add_hold(s, subject_ids=subjects[:1], reason="r", actor="legal")
        flt = (Condition(column="type", op="eq", value=type_filter),) if type_filter else ()
        p = events_policy(batch_size=batch, filter=flt)
        approved(eng, p)
        with transaction(eng) as s:
            planned = plan_policy(s, p)
        total = len(raw(eng, "analytics_events"))
        out = execute_run(eng, p, actor="t")
        assert out.processed_rows == out.planned_rows == planned.rows
        assert len(raw(eng, "analytics_events")) == total - planned.rows
        q = select(func.count(func.distinct(QuarantineRow.row_key)))
        assert _count(eng, q) == planned.rows
    finally:
        eng.dispose()


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_alert_channels_log_and_webhook(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    from govern.retention import raise_alert

    _Hook.received.clear()
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with transaction(engine) as s:
            alert = raise_alert(s, "run_missed", policy="events", message="missed at 02:15")
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        broken = WebhookChannel("http://127.0.0.1:1/nothing", timeout=0.5)
        failed = dispatch([alert], [LogChannel(), WebhookChannel(url), broken])
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert failed == 1
    assert [(r["kind"], r["policy"]) for r in _Hook.received] == [("run_missed", "events")]
    assert "run_missed policy=events" in caplog.text
    assert "127.0.0.1:1" not in caplog.text


@pytest.fixture
def kek_engine(migrated_url: str) -> Iterator[Engine]:
    """Keys in ``data_keys`` under a KEK, so that ``govern scan encryption`` knows them."""
    import base64
    import os

    from govern.config import load_settings
    from govern.db import create_engine
    from govern.keys import attach

    kek = base64.b64encode(os.urandom(32)).decode()
    eng = create_engine(migrated_url)
    attach(eng, load_settings({"GOVERN_DATABASE_URL": migrated_url, "GOVERN_KEK": kek}))
    yield eng
    eng.dispose()


def _subjects_policy() -> Policy:
    return Policy(
        name="old-subjects",
        table="subjects",
        timestamp_column="created_at",
        period="P1Y",
        owner="o",
        purpose="p",
        batch_size=2,
    )


def _seed_subjects(engine: Engine) -> list[uuid.UUID]:
    from govern.domains.core import Subject

    with transaction(engine) as s:
        subs = [
            Subject(
                external_ref=f"ext-{i}",
                email=f"person{i}@example.com",
                phone=None if i % 2 else f"+4470000000{i}",
                given_name=f"Given{i}",
                birth_date=dt.date(1980, 1, 1 + i),
                created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )
            for i in range(5)
        ]
        s.add_all(subs)
        s.flush()
        return [x.id for x in subs]


def test_encrypted_rows_quarantine_as_sealed_hex_and_roll_back_byte_identical(
    kek_engine: Engine,
) -> None:
    engine = kek_engine
    from govern.domains.core import Subject
    from govern.keys import scan_encryption
    from govern.types.blind_index import lookup

    ids = _seed_subjects(engine)
    p = _subjects_policy()
    approved(engine, p)
    before = raw(engine, "subjects")
    out = execute_run(engine, p, actor="t")
    assert (out.status, out.processed_rows) == ("completed", 5)
    assert raw(engine, "subjects") == []
    stored = {r[0]: r for r in before}
    cols = [c.name for c in Subject.__table__.columns]
    with transaction(engine) as s:
        copies = s.scalars(select(QuarantineRow.row)).all()
    assert len(copies) == 5
    for copy in copies:
        text = copy if isinstance(copy, str) else json.dumps(copy)
        assert "example.com" not in text
        assert "Given" not in text
        assert "ext-" not in text
        doc = json.loads(text)
        key = next(k for k in stored if str(k).replace("-", "") == doc["id"].replace("-", ""))
        email = bytes(stored[key][cols.index("email")])
        assert bytes.fromhex(doc["email"]) == email  # the envelope, exactly as stored
    assert scan_encryption(engine).ok
    with transaction(engine) as s:
        rollback(s, out.id, actor="t")  # type: ignore[arg-type]
    assert raw(engine, "subjects") == before
    with transaction(engine) as s:
        back = {x.id: x for x in s.scalars(select(Subject))}
        assert sorted(back) == sorted(ids)
        for i, sid in enumerate(ids):
            assert back[sid].email == f"person{i}@example.com"
            assert back[sid].external_ref == f"ext-{i}"
            assert back[sid].birth_date == dt.date(1980, 1, 1 + i)
            assert back[sid].phone == (None if i % 2 else f"+4470000000{i}")
        assert [x.id for x in lookup(s, Subject.email, "person3@example.com")] == [ids[3]]


def test_shredded_rows_roll_back_readable(engine: Engine) -> None:
    seed(engine, 30, random.Random(11))
    p = events_policy()
    approved(engine, p)
    with transaction(engine) as s:
        props = {e.id: e.properties for e in s.scalars(select(AnalyticsEvent))}
    out = execute_run(engine, p, actor="t")
    assert out.processed_rows > 0
    with transaction(engine) as s:
        rollback(s, out.id, actor="t")  # type: ignore[arg-type]
    with transaction(engine) as s:
        assert props == {e.id: e.properties for e in s.scalars(select(AnalyticsEvent))}


@pytest.mark.parametrize(
    ("column", "value"),
    [("email", "ann@example.com"), ("email", "zz"), ("external_ref_index", "00ff"), ("phone", 7)],
)
def test_scan_finds_plaintext_planted_in_quarantine(
    kek_engine: Engine, column: str, value: Any
) -> None:
    engine = kek_engine
    from govern.keys import scan_encryption

    _seed_subjects(engine)
    p = _subjects_policy()
    approved(engine, p)
    out = execute_run(engine, p, actor="t")
    assert scan_encryption(engine).ok
    with transaction(engine) as s:
        row = s.scalars(select(QuarantineRow).limit(1)).one()
        doc = json.loads(row.row) if isinstance(row.row, str) else dict(row.row)
        doc[column] = value
        s.add(QuarantineRow(run_id=out.id, batch=99, table_name="subjects", row_key="x", row=doc))
    report = scan_encryption(engine)
    bad = {f"{c.table}.{c.column}": c.bad for c in report.columns if c.bad}
    assert bad == {"retention_quarantine.row": 1}
    assert not report.ok


def _shred_policy(**over: Any) -> Policy:
    return events_policy(name="events-shred", action="crypto_shred", batch_size=2, **over)


def _events(engine: Engine) -> dict[int, tuple[Any, dt.datetime, Any]]:
    with transaction(engine) as s:
        return {
            e.id: (e.subject_id, e.occurred_at, e.properties)
            for e in s.scalars(select(AnalyticsEvent))
        }


@pytest.mark.parametrize("hold", [False, True])
def test_crypto_shred_makes_only_expired_rows_unreadable(engine: Engine, hold: bool) -> None:
    from govern.domains.analytics import AnalyticsSession
    from govern.keys.models import ShredProof
    from govern.types.shredded import Shredded

    subjects = seed(engine, 60, random.Random(12), subjects=4)
    with transaction(engine) as s:
        for sid in subjects:
            s.add(AnalyticsSession(subject_id=sid, ip_address=f"10.1.0.{subjects.index(sid)}"))
        if hold:
            holds.add_hold(s, subject_ids=[subjects[0]], reason="litigation", actor="legal")
    p = _shred_policy()
    with pytest.raises(NotApprovedError):
        execute_run(engine, p, actor="t")
    approved(engine, p)
    before = _events(engine)
    table_before = len(before)
    cutoff = p.cutoff(dt.datetime.now(dt.UTC))
    held = {subjects[0]} if hold else set()
    due = {
        i
        for i, (sid, at, _) in before.items()
        if sid is not None and sid not in held and at < cutoff
    }
    with transaction(engine) as s:
        planned = plan_policy(s, p)
    assert planned.rows == len(due) > 0
    assert planned.excluded_by_holds == sum(
        1 for sid, at, _ in before.values() if sid in held and at < cutoff
    )
    out = execute_run(engine, p, actor="t")
    assert (out.status, out.processed_rows, out.planned_rows) == (
        "completed",
        len(due),
        len(due),
    )
    assert out.restore_until is None
    after = _events(engine)
    assert len(after) == table_before  # rows stay; only their values go
    for i, (_sid, _at, props) in after.items():
        if i in due:
            assert isinstance(props, Shredded)
        else:
            assert props == before[i][2]
    with transaction(engine) as s:
        ips = {x.subject_id: x.ip_address for x in s.scalars(select(AnalyticsSession))}
        shredded_subjects = {before[i][0] for i in due}
        assert s.scalar(select(func.count()).select_from(ShredProof)) == len(shredded_subjects)
    assert all(ips[sid] == f"10.1.0.{subjects.index(sid)}" for sid in subjects)
    again = execute_run(engine, p, actor="t")
    assert (again.status, again.processed_rows) == ("completed", 0)
    with transaction(engine) as s:
        assert plan_policy(s, p).rows == 0
    with transaction(engine) as s, pytest.raises(RestoreWindowError, match="cannot come back"):
        rollback(s, out.id, actor="t")  # type: ignore[arg-type]


def test_crypto_shred_needs_a_shredded_table() -> None:
    from govern.errors import PolicyError
    from govern.retention import build_policies

    bad = events_policy(table="subjects", timestamp_column="created_at", action="crypto_shred")
    with pytest.raises(PolicyError, match="field action: crypto_shred needs a table"):
        build_policies([bad])


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed_value=st.integers(0, 10_000),
    n=st.integers(0, 40),
    batch=st.integers(1, 4),
    hold=st.booleans(),
    killed_after=st.integers(0, 3),
)
def test_crypto_shred_simulation_counts_equal_the_run(
    databases: Databases,
    backend: str,
    seed_value: int,
    n: int,
    batch: int,
    hold: bool,
    killed_after: int,
) -> None:
    eng = keyed_engine(databases.migrated(backend))
    try:
        subjects = seed(eng, n, random.Random(seed_value), subjects=5)
        if hold:
            with transaction(eng) as s:
                holds.add_hold(s, subject_ids=subjects[:1], reason="r", actor="legal")
        p = events_policy(action="crypto_shred", batch_size=batch)
        approved(eng, p)
        with transaction(eng) as s:
            planned = plan_policy(s, p)
        out = execute_run(eng, p, actor="t", max_batches=killed_after or None)
        if out.status != "completed":  # stopped part-way: the next run resumes it
            assert out.processed_rows <= planned.rows
            resumed = execute_run(eng, p, actor="t")
            assert resumed.id == out.id
            out = resumed
        assert out.processed_rows == out.planned_rows == planned.rows
        from govern.types.shredded import Shredded

        unreadable = sum(isinstance(v[2], Shredded) for v in _events(eng).values())
        assert unreadable == planned.rows
    finally:
        eng.dispose()


def test_a_row_changed_while_its_batch_runs_refuses_the_batch(engine: Engine) -> None:
    """PostgreSQL: the copy and the change read the batch under one snapshot; a row another
    transaction makes no longer due meanwhile is skipped by the change, and the batch, whose
    counts then differ, is refused whole (not deleted without its quarantined copy)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write lock keeps other writers out of a batch")
    from sqlalchemy import text

    from govern.retention import service

    seed(engine, 30, random.Random(9))
    p = events_policy(batch_size=1000)
    approved(engine, p)
    with transaction(engine) as s:
        run, _ = service.start_run(s, p, actor="t")
        run_id = run.id
        victim = s.scalar(
            select(func.min(AnalyticsEvent.id)).where(AnalyticsEvent.occurred_at < run.cutoff)
        )
    before = raw(engine, "analytics_events")
    blocker = engine.connect()
    tx = blocker.begin()
    blocker.execute(
        text("UPDATE analytics_events SET occurred_at = now() WHERE id = :id"), {"id": victim}
    )
    caught: list[BaseException] = []

    def batch() -> None:
        try:
            with transaction(engine) as s:
                service.run_batch(s, s.get_one(Run, run_id), p)
        except BaseException as exc:
            caught.append(exc)

    worker = threading.Thread(target=batch)
    worker.start()
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE 'WITH copied AS%'"
    )
    with engine.connect() as watch:
        for _ in range(600):
            if watch.execute(waiting).scalar_one():
                break
            watch.rollback()
            threading.Event().wait(0.05)
        else:
            pytest.fail("the batch never waited for the concurrent update")
    tx.commit()
    blocker.close()
    worker.join(60)
    assert len(caught) == 1, caught
    assert isinstance(caught[0], UsageError)
    assert "but changed" in str(caught[0])
    after = raw(engine, "analytics_events")
    assert len(after) == len(before)  # nothing deleted: the batch rolled back whole
    assert _count(engine, select(func.count()).select_from(QuarantineRow)) == 0
