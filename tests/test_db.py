"""``govern.db.transaction`` and ``write_transaction`` on real databases."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from govern.db import create_engine, transaction, write_connection, write_transaction
from govern.retention.models import Lease

UNTIL = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _leases(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with transaction(engine) as s:
            return {x.policy_name: x.holder for x in s.scalars(select(Lease))}
    finally:
        engine.dispose()


def test_write_transaction_commits_pending_orm_changes(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:
        with write_transaction(engine) as s:
            s.add(Lease(policy_name="p", holder="a", expires_at=UNTIL))  # never flushed here
        assert _leases(migrated_url) == {"p": "a"}
        with write_transaction(engine) as s:
            s.get_one(Lease, "p").holder = "b"  # an attribute change, never flushed here
        assert _leases(migrated_url) == {"p": "b"}
    finally:
        engine.dispose()


def test_write_transaction_rolls_back_on_error(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:

        def fail_after_flush() -> None:
            with write_transaction(engine) as s:
                s.add(Lease(policy_name="p", holder="a", expires_at=UNTIL))
                s.flush()
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fail_after_flush()
        assert _leases(migrated_url) == {}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_write_transaction_holds_sqlites_write_lock_from_its_first_read(
    migrated_url: str,
) -> None:
    """A read-then-write transaction must not start deferred: a commit by another connection
    between its read and its write would make the write fail ("database is locked") at once,
    whatever the busy timeout."""
    engine = create_engine(migrated_url)
    other = sqlite3.connect(make_url(migrated_url).database or "", timeout=0)
    try:
        with write_transaction(engine) as s:
            assert s.get(Lease, "p") is None
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            s.add(Lease(policy_name="p", holder="a", expires_at=UNTIL))
        other.execute("BEGIN IMMEDIATE")  # free again once it committed
        other.rollback()
        with transaction(engine) as s:
            assert s.get(Lease, "p") is not None
            other.execute("BEGIN IMMEDIATE")  # a plain transaction leaves writers be
            other.rollback()
    finally:
        other.close()
        engine.dispose()


def test_write_connection_commits_and_rolls_back(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    row = {"policy_name": "p", "holder": "a", "expires_at": UNTIL}
    try:
        with write_connection(engine) as conn:
            conn.execute(insert(Lease), row)
        assert _leases(migrated_url) == {"p": "a"}

        def fail_after_insert() -> None:
            with write_connection(engine) as conn:
                conn.execute(insert(Lease), {**row, "policy_name": "q"})
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fail_after_insert()
        assert _leases(migrated_url) == {"p": "a"}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_write_connection_holds_sqlites_write_lock_from_its_first_read(
    migrated_url: str,
) -> None:
    engine = create_engine(migrated_url)
    other = sqlite3.connect(make_url(migrated_url).database or "", timeout=0)
    try:
        with write_connection(engine) as conn:
            assert conn.execute(select(Lease.policy_name)).first() is None
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
        with engine.begin() as conn:  # govern's plain transactions stay deferred
            conn.execute(select(Lease.policy_name)).first()
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
    finally:
        other.close()
        engine.dispose()
