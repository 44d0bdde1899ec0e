"""The conversion migrations on populated databases: sealed going up, plaintext coming down."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from govern.config import load_settings
from govern.db import create_engine, transaction
from govern.domains.analytics import AnalyticsEvent
from govern.domains.commerce import Payment
from govern.domains.community import Post
from govern.domains.core import Subject
from govern.errors import ConfigError
from govern.keys import attach, detokenise, lookup, scan_encryption
from govern.migrations import downgrade, upgrade
from tests.helpers import schema_snapshot, versions
from tests.keys.conftest import new_kek

BEFORE = {
    "core": "core_0006",
    "commerce": "commerce_0001",
    "analytics": "analytics_0001",
    "community": "community_0001",
}
SID = uuid.UUID(int=42)
OID = uuid.UUID(int=43)


def _plain_rows(url: str) -> None:
    engine = create_engine(url)
    sid = SID.hex if engine.dialect.name == "sqlite" else str(SID)
    oid = OID.hex if engine.dialect.name == "sqlite" else str(OID)
    t = "2024-05-01 10:00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subjects (id, external_ref, email, birth_date, status, created_at,"
                " updated_at) VALUES (:i, 'ext-42', 'Ann@Example.com', '1990-05-17', 'active',"
                " :t, :t)"
            ),
            {"i": sid, "t": t},
        )
        conn.execute(
            text(
                "INSERT INTO orders (id, subject_id, status, currency, total_amount,"
                " shipping_address, placed_at) VALUES (:o, :i, 'placed', 'EUR', 12.30,"
                ' \'{"city": "Bonn"}\', :t)'
            ),
            {"o": oid, "i": sid, "t": t},
        )
        conn.execute(
            text(
                "INSERT INTO payments (id, order_id, subject_id, method, card_number, amount,"
                " currency, status, paid_at) VALUES (:p, :o, :i, 'card', '4111111111114242',"
                " 12.30, 'EUR', 'ok', :t)"
            ),
            {"p": uuid.uuid4().hex, "o": oid, "i": sid, "t": t},
        )
        conn.execute(
            text(
                "INSERT INTO analytics_events (subject_id, type, occurred_at, properties)"
                " VALUES (:i, 'view', :t, '{\"path\": \"/a\"}')"
            ),
            {"i": sid, "t": t},
        )
        conn.execute(
            text("INSERT INTO communities (id, slug, name, created_at) VALUES (:c, 's', 'n', :t)"),
            {"c": oid, "t": t},
        )
        conn.execute(
            text(
                "INSERT INTO posts (id, community_id, author_subject_id, title, body, created_at)"
                " VALUES (:p, :c, :i, 'Hello', 'World', :t)"
            ),
            {"p": uuid.uuid4().hex, "c": oid, "i": sid, "t": t},
        )
    engine.dispose()


def _json(value: Any) -> Any:
    return value if isinstance(value, dict) else json.loads(value)


def _raw(url: str) -> list[Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        out = [
            tuple(conn.execute(text("SELECT external_ref, email, birth_date FROM subjects")).one()),
            tuple(conn.execute(text("SELECT card_number FROM payments")).one()),
            tuple(conn.execute(text("SELECT properties FROM analytics_events")).one()),
            tuple(conn.execute(text("SELECT title, body FROM posts")).one()),
        ]
    engine.dispose()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in out]


def test_populated_database_converts_and_converts_back(
    govern_env: Path, monkeypatch: pytest.MonkeyPatch, empty_url: str
) -> None:
    for domain, rev in BEFORE.items():
        upgrade(empty_url, [domain], rev)
    _plain_rows(empty_url)
    plain = _raw(empty_url)
    schema = schema_snapshot(empty_url)

    with pytest.raises(ConfigError, match="GOVERN_KEK is not set and table subjects has 1 row"):
        upgrade(empty_url)
    # The failing revision left nothing behind (SQLite keeps the revisions before it).
    assert "core_0004" not in versions(empty_url)
    assert plain == _raw(empty_url)
    assert schema["subjects"] == schema_snapshot(empty_url)["subjects"]

    kek = new_kek()
    monkeypatch.setenv("GOVERN_KEK", kek)
    upgrade(empty_url)
    sealed = _raw(empty_url)
    assert b"Ann" not in sealed[0][1]
    assert sealed[1][0].startswith("tok_")
    assert sealed[1][0].endswith("_4242")
    assert b"/a" not in sealed[2][0]

    settings = load_settings({"GOVERN_DATABASE_URL": empty_url, "GOVERN_KEK": kek})
    engine = create_engine(empty_url)
    attach(engine, settings)
    try:
        assert scan_encryption(engine).ok
        with transaction(engine) as s:
            (ann,) = lookup(s, Subject.email, "ann@example.com")
            assert (ann.external_ref, ann.birth_date.isoformat()) == ("ext-42", "1990-05-17")  # type: ignore[union-attr]
            assert [ann.id] == [x.id for x in lookup(s, Subject.external_ref, "ext-42")]
            card = s.scalars(select(Payment.card_number)).one()
            assert detokenise(s, card, actor="t", purpose="test") == "4111111111114242"  # type: ignore[arg-type]
            assert s.scalars(select(AnalyticsEvent.properties)).one() == {"path": "/a"}
            assert tuple(s.execute(select(Post.title, Post.body)).one()) == ("Hello", "World")
    finally:
        engine.dispose()

    for domain in ("community", "analytics", "commerce"):
        downgrade(empty_url, domain, BEFORE[domain])
    downgrade(empty_url, "core", BEFORE["core"])
    restored = _raw(empty_url)
    assert plain[0][:2] == restored[0][:2]
    assert str(plain[0][2]) == str(restored[0][2])
    assert plain[1] == restored[1]
    assert _json(plain[2][0]) == _json(restored[2][0])
    assert plain[3] == restored[3]
    assert schema == schema_snapshot(empty_url)
