"""Helpers shared by tests."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import Pool

from govern.db import create_engine

BOOKKEEPING = {"alembic_version", "govern_migration_checksums"}


def schema_snapshot(url: str) -> dict[str, Any]:
    """Tables, columns (name, type, nullability), indexes, uniques and foreign keys."""
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        snap: dict[str, Any] = {}
        for table in sorted(set(insp.get_table_names()) - BOOKKEEPING):
            snap[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
                ],
                "pk": insp.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in insp.get_indexes(table)
                ),
                "uniques": sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in insp.get_unique_constraints(table)
                ),
                "fks": sorted(
                    (f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                    for f in insp.get_foreign_keys(table)
                ),
            }
        return snap
    finally:
        engine.dispose()


def versions(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return set()
            return {r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    finally:
        engine.dispose()


def table_counts(url: str) -> dict[str, int]:
    """Row count of every table: a cheap way to assert that nothing changed."""
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        with engine.connect() as conn:
            return {
                t: conn.exec_driver_sql(f'SELECT COUNT(*) FROM "{t}"').scalar_one()  # noqa: S608
                for t in sorted(insp.get_table_names())
            }
    finally:
        engine.dispose()


TEST_KEK = bytes(range(100, 132))


def keyed_engine(url: str) -> Any:
    """An engine whose keyring is attached as in production (data keys stored in the database).

    The first call on a database creates its data keys under a fixed test KEK; later
    engines on the same database load them, so they read what earlier ones wrote.
    """
    from govern.crypto.keyring import StaticKeyProvider
    from govern.keys import attach

    engine = create_engine(url)
    attach(engine, StaticKeyProvider(TEST_KEK))
    return engine


class DeferredWrites:
    """Records SQLite transactions that read, then write, after a plain (deferred) BEGIN.

    Such a transaction fails its first write at once ("database is locked", whatever the
    busy timeout) when another connection committed after its read: a worker, a scheduler
    or the host application. Writers that read first must begin with ``BEGIN IMMEDIATE``.

    While installed, every new SQLite connection is traced by SQLite itself
    (``set_trace_callback``), so statements sent through the raw driver count too. Only
    transactions begun under ``within`` (a module's file name ending, such as
    ``govern/cli.py``: not the test's own set-up) are judged; ``found`` holds the offending
    writes.
    """

    _WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")

    def __init__(self, within: str) -> None:
        self.within = within
        self.found: list[str] = []
        self._active = False
        self._tx: dict[int, list[bool]] = {}  # connection -> [deferred, has read]

    def install(self) -> None:
        self._active = True
        event.listen(Pool, "connect", self._connect)

    def remove(self) -> None:
        self._active = False
        event.remove(Pool, "connect", self._connect)

    def _connect(self, dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            key = id(dbapi_conn)
            dbapi_conn.set_trace_callback(lambda sql: self._trace(key, sql))

    def _trace(self, key: int, statement: str) -> None:
        if not self._active:
            return
        words = statement.lstrip().upper()
        if not words or words.startswith("--"):  # "-- TRIGGER name": inside a statement
            return
        head = words.split(None, 1)[0].rstrip(";")
        if head == "BEGIN":
            if self._called_within():
                self._tx[key] = [words.rstrip(";") != "BEGIN IMMEDIATE", False]
            return
        if head in ("COMMIT", "END", "ROLLBACK") and not words.startswith("ROLLBACK TO"):
            self._tx.pop(key, None)
            return
        state = self._tx.get(key)
        if state is None or not state[0]:
            return
        writes = head in self._WRITES or (
            head == "WITH" and any(f" {w} " in f" {words} " for w in self._WRITES[:4])
        )
        if writes:
            if state[1]:
                self.found.append(" ".join(statement.split())[:120])
            state[0] = False  # the write lock is held from here on
        elif head in ("SELECT", "WITH", "PRAGMA", "VALUES"):
            state[1] = True

    def _called_within(self) -> bool:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename.endswith(self.within):
                return True
            frame = frame.f_back  # type: ignore[assignment]
        return False


@contextlib.contextmanager
def commit_between(engine: Engine, picks: Callable[[str], bool]) -> Iterator[list[str]]:
    """Another process writing in the middle of a transaction, on SQLite.

    While the block runs, right after the first statement ``picks`` chooses (a read),
    another connection tries to commit a write to the same file without waiting. The list
    yielded receives ``"committed"``, or SQLite's refusal (``"database is locked"``) when
    the transaction holds the write lock from its read, as it must if it writes later.
    """
    path = make_url(str(engine.url)).database or ""
    outcome: list[str] = []

    def after_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if outcome or not picks(statement):
            return
        side = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            side.execute("CREATE TABLE side_write (n INTEGER)")
            outcome.append("committed")
        except sqlite3.OperationalError as exc:
            outcome.append(str(exc))
        finally:
            side.close()

    event.listen(engine, "after_cursor_execute", after_execute)
    try:
        yield outcome
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)
