"""Fixtures: every database test runs on a real SQLite file and on a real PostgreSQL server.

``scripts/test.sh`` starts a throwaway PostgreSQL 15 and sets ``GOVERNTEST_POSTGRES_URL``;
without it the PostgreSQL half is skipped locally, and fails when
``GOVERNTEST_REQUIRE_POSTGRES=1`` (as in CI).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url

from govern.db import create_engine

PG_URL = os.environ.get("GOVERNTEST_POSTGRES_URL")
REQUIRE_PG = os.environ.get("GOVERNTEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

# No per-example deadline and no slow-generation check: property tests that touch a database,
# or merely share two cores with a PostgreSQL server, would otherwise fail as
# DeadlineExceeded, Flaky or FailedHealthCheck on a busy machine.
hypothesis_settings.register_profile(
    "govern", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "govern"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL:
        return
    if REQUIRE_PG:
        raise pytest.UsageError(
            "GOVERNTEST_REQUIRE_POSTGRES=1 but GOVERNTEST_POSTGRES_URL is unset"
        )
    skip = pytest.mark.skip(reason="no PostgreSQL server (run scripts/test.sh)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _pg_admin(sql: str) -> None:
    assert PG_URL
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _pg_db_url(name: str) -> str:
    assert PG_URL
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


class Databases:
    """Makes fresh databases: empty, or migrated to head (copied from a template)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._templates: dict[str, str] = {}
        self._made: list[str] = []

    def empty(self, backend: str) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite:///{self.root / name}.db"
        _pg_admin(f'CREATE DATABASE "{name}"')
        self._made.append(name)
        return _pg_db_url(name)

    def migrated(self, backend: str) -> str:
        from govern import migrations

        if backend not in self._templates:
            url = self.empty(backend)
            migrations.upgrade(url)
            self._templates[backend] = url
        template = self._templates[backend]
        name = f"t_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            target = self.root / f"{name}.db"
            shutil.copyfile(make_url(template).database or "", target)
            return f"sqlite:///{target}"
        _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template).database}"')
        self._made.append(name)
        return _pg_db_url(name)

    def cleanup(self) -> None:
        for name in self._made:
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    if PG_URL:
        dbs.cleanup()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_url(databases: Databases, backend: str) -> str:
    """A URL of a new, empty database on each backend."""
    return databases.empty(backend)


@pytest.fixture
def migrated_url(databases: Databases, backend: str) -> str:
    """A URL of a new database with every domain at head, on each backend."""
    return databases.migrated(backend)


@pytest.fixture
def govern_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Runs with a clean GOVERN_* environment in an empty working directory."""
    for key in list(os.environ):
        if key.upper().startswith("GOVERN_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path
