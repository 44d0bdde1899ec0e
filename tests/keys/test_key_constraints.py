"""core_0015: the database holds at most one primary data key and one live blind-index root."""

from __future__ import annotations

import datetime as dt
import importlib.util

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from govern.db import create_engine
from govern.errors import MigrationError
from govern.keys.models import DataKey
from govern.migrations import status, upgrade
from govern.migrations.paths import domain_dirs

ADD = (
    "INSERT INTO data_keys (id, purpose, state, kek_fingerprint, wrapped_key, created_at)"
    " VALUES (:id, :purpose, :state, 'fp', :wrapped, :at)"
)
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _add(url: str, *keys: tuple[int, str, str]) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for kid, purpose, state in keys:
                conn.execute(
                    text(ADD),
                    {"id": kid, "purpose": purpose, "state": state, "wrapped": b"x", "at": AT},
                )
    finally:
        engine.dispose()


def _keys(url: str) -> list[tuple[int, str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, purpose, state FROM data_keys ORDER BY id"))
            return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]
    finally:
        engine.dispose()


def _core(url: str) -> str | None:
    return next(d.current for d in status(url).domains if d.domain == "core")


def test_a_second_primary_or_blind_root_is_refused(migrated_url: str) -> None:
    _add(migrated_url, (1, "data", "primary"), (2, "blind", "active"), (3, "data", "active"))
    with pytest.raises(IntegrityError):
        _add(migrated_url, (4, "data", "primary"))
    with pytest.raises(IntegrityError):
        _add(migrated_url, (4, "blind", "active"))
    _add(migrated_url, (4, "blind", "retired"))  # retired roots do not count
    assert len(_keys(migrated_url)) == 4


def test_upgrade_keeps_the_newest_of_several_primaries(empty_url: str) -> None:
    upgrade(empty_url, ["core"], "core_0014")
    _add(empty_url, (1, "data", "primary"), (2, "blind", "active"), (3, "data", "primary"))
    upgrade(empty_url, ["core"], "core_0015")
    assert _keys(empty_url) == [
        (1, "data", "active"),
        (2, "blind", "active"),
        (3, "data", "primary"),
    ]


def test_upgrade_stops_on_several_blind_roots(empty_url: str) -> None:
    upgrade(empty_url, ["core"], "core_0014")
    keys = [
        (1, "data", "primary"),
        (2, "data", "primary"),
        (3, "blind", "active"),
        (4, "blind", "active"),
    ]
    _add(empty_url, *keys)
    with pytest.raises(MigrationError, match=r"2 live blind-index roots \(ids 3, 4\)"):
        upgrade(empty_url, ["core"], "core_0015")
    assert _core(empty_url) == "core_0014"
    assert _keys(empty_url) == keys  # nothing changed


def test_the_models_indexes_are_the_migrations() -> None:
    """Alembic's model comparison ignores index predicates: compare them here."""
    path = next(domain_dirs()["core"].glob("core_0015_*.py"))
    spec = importlib.util.spec_from_file_location("core_0015", path)
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    indexes = {i.name: i for i in DataKey.__table__.indexes}
    for name, where in (
        ("uq_data_keys_single_primary", migration.ONE_PRIMARY),
        ("uq_data_keys_single_blind_root", migration.ONE_BLIND_ROOT),
    ):
        index = indexes[name]
        assert index.unique
        assert [c.name for c in index.columns] == ["purpose"]
        for dialect in ("sqlite", "postgresql"):
            assert str(index.dialect_options[dialect]["where"]) == where
