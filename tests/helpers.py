"""Helpers shared by tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

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
