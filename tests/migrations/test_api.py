"""The migration API: per-domain up and down, dependants, status, offline SQL and check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from govern.db import DOMAINS, create_engine
from govern.errors import (
    DependentDomainError,
    UnknownDomainError,
    UnknownRevisionError,
    UsageError,
)
from govern.migrations import check, downgrade, offline_sql, status, upgrade
from govern.migrations import paths as migration_paths
from tests.helpers import schema_snapshot, versions


def _current(url: str) -> dict[str, str | None]:
    return {d.domain: d.current for d in status(url).domains}


def test_up_one_domain_brings_its_dependency(empty_url: str) -> None:
    result = upgrade(empty_url, ["commerce"])
    assert list(dict.fromkeys(s.domain for s in result.steps)) == ["core", "commerce"]
    current = _current(empty_url)
    assert current["analytics"] is None
    assert current["commerce"] is not None


def test_down_refuses_when_dependants_are_applied(migrated_url: str) -> None:
    before = schema_snapshot(migrated_url)
    with pytest.raises(DependentDomainError, match="analytics, commerce, community"):
        downgrade(migrated_url, "core", "base")
    assert before == schema_snapshot(migrated_url)


def test_down_one_domain_leaves_others_intact(migrated_url: str) -> None:
    before = schema_snapshot(migrated_url)
    downgrade(migrated_url, "community", "base")
    after = schema_snapshot(migrated_url)
    from govern.db import load_models

    community = {t.name for t in load_models().tables.values() if t.info["domain"] == "community"}
    assert set(before) - set(after) == community
    assert {k: v for k, v in before.items() if k not in community} == after
    assert _current(migrated_url)["community"] is None


def test_cascade_rolls_back_dependants_first(migrated_url: str) -> None:
    result = downgrade(migrated_url, "core", "base", cascade=True)
    assert result.steps[-1].domain == "core"
    assert set() == versions(migrated_url)
    assert schema_snapshot(migrated_url) == {}


def test_default_down_is_one_revision(migrated_url: str) -> None:
    result = downgrade(migrated_url, "analytics")
    assert len(result.steps) == 1
    assert result.steps[0].direction == "down"


def test_up_is_idempotent(migrated_url: str) -> None:
    assert upgrade(migrated_url).steps == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda u: upgrade(u, ["nope"]), UnknownDomainError),
        (lambda u: upgrade(u, None, "nope_0001"), UnknownRevisionError),
        (lambda u: upgrade(u, ["commerce"], "core_0001"), UnknownRevisionError),
        (lambda u: upgrade(u, ["core", "commerce"], "core_0001"), UsageError),
        (lambda u: downgrade(u, "nope"), UnknownDomainError),
        (lambda u: downgrade(u, "core", "nope"), UnknownRevisionError),
    ],
)
def test_bad_input_changes_nothing(migrated_url: str, call, error) -> None:  # type: ignore[no-untyped-def]
    before = (schema_snapshot(migrated_url), versions(migrated_url))
    with pytest.raises(error):
        call(migrated_url)
    assert before == (schema_snapshot(migrated_url), versions(migrated_url))


def test_offline_sql_creates_every_table() -> None:
    from govern.db import load_models

    sql = offline_sql("sqlite:///unused.db")
    for name in load_models().tables:
        assert f"CREATE TABLE {name} " in sql
    assert not Path("unused.db").exists()


def test_check_is_clean_at_head(migrated_url: str) -> None:
    assert check(migrated_url).ok


def test_check_reports_pending(empty_url: str) -> None:
    upgrade(empty_url, ["core"])
    kinds = {(f.kind, f.domain) for f in check(empty_url).findings}
    assert {("pending", d) for d in DOMAINS if d != "core"} == kinds


def test_check_reports_drift(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE wallets ADD COLUMN nickname VARCHAR(20)"))
    engine.dispose()
    findings = check(migrated_url).findings
    assert [(f.kind, f.detail) for f in findings] == [("drift", "remove_column wallets.nickname")]


@pytest.fixture
def scripts_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the revision scripts, so tests can edit them."""
    root = tmp_path / "migrations"
    shutil.copytree(migration_paths.migrations_root(), root)
    monkeypatch.setattr(migration_paths, "migrations_root", lambda: root)
    return root


def test_check_names_an_applied_file_edited_since(scripts_copy: Path, empty_url: str) -> None:
    upgrade(empty_url)
    edited = next((scripts_copy / "commerce").glob("commerce_0001_*.py"))
    edited.write_text(edited.read_text() + "\n# a later edit\n")
    findings = check(empty_url).findings
    assert [("checksum", "commerce", f"{edited.name} was edited after it was applied")] == [
        (f.kind, f.domain, f.detail) for f in findings
    ]


def _add_revision(root: Path, domain: str, rev: str, down: str, downgrade_body: str) -> None:
    (root / domain / f"{rev}_extra.py").write_text(
        f'"""extra"""\nfrom alembic import op\n\nrevision = "{rev}"\ndown_revision = "{down}"\n'
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade() -> None:\n"
        '    op.execute("SELECT 1")\n\n\ndef downgrade() -> None:\n'
        f"{downgrade_body}\n"
    )


def test_check_finds_empty_downgrade(scripts_copy: Path, empty_url: str) -> None:
    _add_revision(
        scripts_copy, "community", "community_9001", _head("community"), '    """no"""\n    pass'
    )
    upgrade(empty_url)
    findings = [(f.kind, f.detail) for f in check(empty_url).findings]
    assert findings == [("irreversible", "community_9001 has an empty downgrade()")]


def test_check_finds_two_heads(scripts_copy: Path, empty_url: str) -> None:
    head = _head("analytics")
    _add_revision(scripts_copy, "analytics", "analytics_9001", head, '    op.execute("SELECT 1")')
    _add_revision(scripts_copy, "analytics", "analytics_9002", head, '    op.execute("SELECT 1")')
    findings = [(f.kind, f.domain) for f in check(empty_url).findings]
    assert ("multiple-heads", "analytics") in findings


def _head(domain: str) -> str:
    return next(d.head for d in status("sqlite://").domains if d.domain == domain)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_alembic_upgrade_on_a_callers_connection_leaves_no_lock_behind(empty_url: str) -> None:
    """Alembic's own command on a connection the host owns: the run takes SQLite's write lock
    (BEGIN IMMEDIATE) but ends every transaction it began, and turns foreign keys back on."""
    import sqlite3

    from alembic import command
    from sqlalchemy.engine import make_url

    from govern.migrations import alembic_config

    engine = create_engine(empty_url)
    try:
        with engine.connect() as conn:
            command.upgrade(alembic_config(empty_url, connection=conn), "heads")
            assert not conn.in_transaction()
            other = sqlite3.connect(make_url(empty_url).database or "", timeout=0)
            try:
                other.execute("BEGIN IMMEDIATE")  # no lock left behind
                other.rollback()
            finally:
                other.close()
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert not conn.get_execution_options().get("govern_immediate", False)
    finally:
        engine.dispose()
    assert all(v is not None for v in _current(empty_url).values())
