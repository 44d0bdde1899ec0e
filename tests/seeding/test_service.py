"""Seeding a real database: idempotent, deterministic, hashed passwords, nothing on error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from govern.credentials import matches
from govern.db import transaction
from govern.domains.analytics import AnalyticsEvent
from govern.domains.core import Account, AuditLog, Subject
from govern.errors import BrokenSeedReferenceError, SeedError
from govern.seeding import generate_events, seed, seed_id
from tests.helpers import keyed_engine, table_counts


def _seed(url: str, **kw):  # type: ignore[no-untyped-def]
    engine = keyed_engine(url)
    try:
        with transaction(engine) as session:
            return seed(session, **kw)
    finally:
        engine.dispose()


def test_second_run_changes_nothing(migrated_url: str) -> None:
    first = _seed(migrated_url, env="demo")
    before = table_counts(migrated_url)
    second = _seed(migrated_url, env="demo")
    assert first.changes > 100
    assert second.changes == 0
    assert {t.table: t.unchanged for t in second.tables} == {
        t.table: t.inserted for t in first.tables
    }
    assert table_counts(migrated_url) == before


def test_ids_are_the_natural_key_ids(migrated_url: str) -> None:
    _seed(migrated_url, env="demo", domains=["core"])
    engine = keyed_engine(migrated_url)
    with transaction(engine) as session:
        ada = session.get_one(Subject, seed_id("core", "subjects", "ada"))
        assert ada.id == seed_id("core", "subjects", "ada")
        assert ada.created_at == dt.datetime(2025, 1, 6, 9, tzinfo=dt.UTC)
    engine.dispose()


def test_accounts_get_argon2id_hashes_of_unknown_passwords(migrated_url: str) -> None:
    _seed(migrated_url, env="staging")
    engine = keyed_engine(migrated_url)
    with transaction(engine) as session:
        accounts = list(session.scalars(select(Account)))
        assert {a.username for a in accounts} == {"svc-reporting", "smoke-1", "svc-deploy"}
        hashes = {a.password_hash for a in accounts}
        assert all(h.startswith("$argon2id$") for h in hashes)
        assert len(hashes) == len(accounts)  # salted, random passwords
    engine.dispose()


def test_seed_password_setting_is_used(migrated_url: str) -> None:
    _seed(migrated_url, env="staging", domains=["core"], seed_password="correct horse battery")
    engine = keyed_engine(migrated_url)
    with transaction(engine) as session:
        account = session.get_one(Account, seed_id("core", "accounts", "smoke-1"))
        assert matches(account.password_hash, "correct horse battery")
        assert not matches(account.password_hash, "correct horse battery!")
    engine.dispose()


def test_changed_fixture_updates_only_that_row(migrated_url: str, tmp_path: Path) -> None:
    core = tmp_path / "core"
    core.mkdir()
    row = '[[subjects]]\nkey = "{k}"\nexternal_ref = "r-{k}"\ncountry = "{c}"\n'
    (core / "base.toml").write_text(row.format(k="a", c="DE") + row.format(k="b", c="FR"))
    first = _seed(migrated_url, env="demo", domains=["core"], root=tmp_path)
    (core / "base.toml").write_text(row.format(k="a", c="AT") + row.format(k="b", c="FR"))
    second = _seed(migrated_url, env="demo", domains=["core"], root=tmp_path)
    assert [(t.inserted, t.updated, t.unchanged) for t in first.tables] == [(2, 0, 0)]
    assert [(t.inserted, t.updated, t.unchanged) for t in second.tables] == [(0, 1, 1)]


def test_broken_fixture_loads_nothing(migrated_url: str, tmp_path: Path) -> None:
    core = tmp_path / "core"
    core.mkdir()
    (core / "base.toml").write_text(
        '[[subjects]]\nkey = "a"\nexternal_ref = "r-a"\n'
        '[[accounts]]\nkey = "a"\nusername = "a"\nsubject_id = { ref = "zz" }\n'
    )
    keyed_engine(migrated_url).dispose()  # a database in use: its data keys exist
    before = table_counts(migrated_url)
    with pytest.raises(BrokenSeedReferenceError):
        _seed(migrated_url, env="demo", domains=["core"], root=tmp_path)
    assert table_counts(migrated_url) == before


def test_seeding_is_audited_once(migrated_url: str) -> None:
    _seed(migrated_url, env="sandbox")
    _seed(migrated_url, env="sandbox")
    engine = keyed_engine(migrated_url)
    with transaction(engine) as session:
        rows = list(session.scalars(select(AuditLog).where(AuditLog.action == "seed.load")))
    engine.dispose()
    assert [(r.target_id, r.details["updated"]) for r in rows] == [("sandbox", 0)]


def test_generate_events(migrated_url: str) -> None:
    _seed(migrated_url, env="demo", domains=["core"])
    end = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    engine = keyed_engine(migrated_url)
    with transaction(engine) as session:
        result = generate_events(session, 25_000, seed=3, days=30, end=end, batch=7_000)
    with transaction(engine) as session:
        subjects = set(session.scalars(select(Subject.id)))
        n = session.scalar(select(func.count()).select_from(AnalyticsEvent))
        events = list(session.scalars(select(AnalyticsEvent).limit(500)))
    engine.dispose()
    assert result.rows == n == 25_000
    assert {e.subject_id for e in events} <= subjects
    assert all(end - dt.timedelta(days=30) <= e.occurred_at < end for e in events)
    assert all(e.occurred_at.tzinfo is dt.UTC for e in events)
    assert all(set(e.properties) == {"section", "path", "device"} for e in events)
    from sqlalchemy import inspect

    engine = keyed_engine(migrated_url)
    assert {"ix_analytics_events_subject_time", "ix_analytics_events_type_time"} <= {
        i["name"] for i in inspect(engine).get_indexes("analytics_events")
    }
    engine.dispose()


def test_generate_needs_subjects(migrated_url: str) -> None:
    engine = keyed_engine(migrated_url)
    with pytest.raises(SeedError, match="run `govern seed` first"), transaction(engine) as s:
        generate_events(s, 10)
    engine.dispose()


def test_reseeding_leaves_an_erased_subject_erased(migrated_url: str, tmp_path: Path) -> None:
    from govern import dsr

    _seed(migrated_url, env="demo")
    sid = seed_id("core", "subjects", "linus")
    engine = keyed_engine(migrated_url)
    try:
        with transaction(engine) as session:
            out = dsr.submit(
                session,
                type="erasure",
                identifiers={"subject_id": str(sid)},
                calendar=dsr.WorkCalendar("UTC"),
                actor="portal",
                verified=True,
            )
            dsr.approve(session, out.request.id, actor="dpo")
        assert dsr.process_request(engine, out.request.id, export_dir=tmp_path).ok
    finally:
        engine.dispose()
    before = table_counts(migrated_url)
    again = _seed(migrated_url, env="demo")
    assert again.changes == 0
    assert {t.table: t.erased for t in again.tables}["subjects"] == 1
    assert sum(t.erased for t in again.tables) > 1  # the subject's rows in other tables too
    assert table_counts(migrated_url) == before
    engine = keyed_engine(migrated_url)
    try:
        with transaction(engine) as session:
            subject = session.get(Subject, sid)
            assert subject is not None
            assert subject.status == "erased"
            assert subject.external_ref != "demo-linus"
    finally:
        engine.dispose()
