"""Checksums of applied revision files, in the style of Flyway's validate and atlas.sum.

When a revision is applied its file's SHA-256 is stored in ``govern_migration_checksums``
in the same transaction; ``govern migrate check`` names any applied file edited since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, insert, select
from sqlalchemy.engine import Connection

TABLE_NAME = "govern_migration_checksums"

_bookkeeping = MetaData()
checksums_table = Table(
    TABLE_NAME,
    _bookkeeping,
    Column("revision", String(64), primary_key=True),
    Column("domain", String(32), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ensure_table(conn: Connection) -> None:
    checksums_table.create(conn, checkfirst=True)


def record(conn: Connection, revision: str, domain: str, path: str | Path) -> None:
    conn.execute(delete(checksums_table).where(checksums_table.c.revision == revision))
    conn.execute(
        insert(checksums_table).values(
            revision=revision,
            domain=domain,
            filename=Path(path).name,
            sha256=file_sha256(path),
            applied_at=dt.datetime.now(dt.UTC),
        )
    )


def forget(conn: Connection, revision: str) -> None:
    conn.execute(delete(checksums_table).where(checksums_table.c.revision == revision))


def recorded(conn: Connection) -> dict[str, str]:
    """``{revision: sha256}`` of every applied revision; empty before the first migration."""
    from sqlalchemy import inspect

    if not inspect(conn).has_table(TABLE_NAME):
        return {}
    rows = conn.execute(select(checksums_table.c.revision, checksums_table.c.sha256))
    return {r.revision: r.sha256 for r in rows}
