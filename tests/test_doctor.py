from __future__ import annotations

from sqlalchemy import text

from govern.config import load_settings
from govern.db import create_engine
from govern.doctor import run_doctor


def test_clean_database_passes(migrated_url: str) -> None:
    report = run_doctor(load_settings({"GOVERN_DATABASE_URL": migrated_url}))
    assert report.ok
    names = [c.name for c in report.checks]
    assert {"settings", "database", "migration checksums", "schema drift"} <= set(names)


def test_tampered_checksum_fails_naming_the_file(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE govern_migration_checksums SET sha256 = 'x' WHERE revision = 'core_0001'")
        )
    engine.dispose()
    report = run_doctor(load_settings({"GOVERN_DATABASE_URL": migrated_url}))
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["migration checksums"]
    assert "core_0001_core_initial_schema.py was edited" in failed[0].detail


def test_unreachable_database_stops_early() -> None:
    report = run_doctor(
        load_settings({"GOVERN_DATABASE_URL": "postgresql+psycopg://x@127.0.0.1:1/none"})
    )
    assert not report.ok
    assert [c.name for c in report.checks] == ["settings", "database"]
