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


def keyed_engine(url: str) -> Any:
    """An engine with an in-memory keyring bound, for tests that write the domains' tables."""
    from govern.keys import bind_keyring
    from govern.testing import memory_keyring

    engine = create_engine(url)
    bind_keyring(engine, memory_keyring())
    return engine
