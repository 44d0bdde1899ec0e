"""Generated analytics events are sealed exactly as the ORM seals them, and erasure shreds them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import LargeBinary, select, type_coerce

from govern import dsr
from govern.crypto import aead
from govern.crypto.keyring import holder
from govern.db import transaction
from govern.domains.analytics import AnalyticsEvent
from govern.dsr import WorkCalendar
from govern.errors import TamperedValueError
from govern.keys.models import SubjectKey
from govern.seeding import generate_events, seed, seed_id
from govern.types import Shredded
from tests.helpers import keyed_engine

END = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
CONTEXT = b"analytics_events.properties"
RAW = select(
    AnalyticsEvent.id,
    AnalyticsEvent.subject_id,
    type_coerce(AnalyticsEvent.properties, LargeBinary),
).order_by(AnalyticsEvent.id)


def _generated(url: str, count: int) -> Any:
    engine = keyed_engine(url)
    with transaction(engine) as s:
        seed(s, "demo", domains=["core"])
    with transaction(engine) as s:
        generate_events(s, count, seed=5, days=10, end=END, batch=700)
    return engine


def test_generated_properties_are_sealed_as_the_orm_seals_them(migrated_url: str) -> None:
    engine = _generated(migrated_url, 2_500)
    with transaction(engine) as s:
        key_of = dict(s.execute(select(SubjectKey.subject_id, SubjectKey.id)).tuples().all())
        rows = s.execute(RAW).all()
        ada = seed_id("core", "subjects", "ada")
        mine = AnalyticsEvent(
            subject_id=ada,
            type="click",
            occurred_at=END,
            properties={"section": "home", "path": "/home/0", "device": "web"},
        )
        s.add(mine)
        s.flush()
        orm_envelope = s.execute(RAW.where(AnalyticsEvent.id == mine.id)).one()[2]
        decoded = {r.id: r.properties for r in s.scalars(select(AnalyticsEvent))}
    keyring = holder(engine.dialect).keyring
    engine.dispose()
    assert keyring is not None
    assert len(rows) == 2_500
    seen_nonces = set()
    by_plaintext: dict[bytes, int] = {}
    for _id, subject, envelope in rows:
        envelope = bytes(envelope)
        # The envelope names the row's own subject key ...
        assert (aead.SUBJECT, key_of[subject]) == aead.parse_header(envelope)
        seen_nonces.add(envelope[aead.HEADER_LEN : aead.HEADER_LEN + aead.NONCE_LEN])
        cipher = keyring.subject_cipher(key_of[subject])
        assert cipher is not None
        # ... its associated data binds it to this table and column ...
        with pytest.raises(TamperedValueError):
            cipher.open(envelope, b"analytics_events.type")
        plaintext = cipher.open(envelope, CONTEXT)
        # ... and its plaintext is the column type's own encoding of the document.
        doc = json.loads(plaintext)
        assert plaintext == AnalyticsEvent.__table__.c["properties"].type.encode(doc)
        assert set(doc) == {"section", "path", "device"}
        assert doc["path"].startswith(f"/{doc['section']}/")
        by_plaintext[plaintext] = by_plaintext.get(plaintext, 0) + 1
    assert len(seen_nonces) == len(rows)  # a fresh nonce for every value
    assert max(by_plaintext.values()) > 1  # equal documents still seal differently
    # A value the ORM sealed for the same document opens to the same bytes.
    orm_envelope = bytes(orm_envelope)
    ada_cipher = keyring.subject_cipher(key_of[ada])
    assert ada_cipher is not None
    assert ada_cipher.open(orm_envelope, CONTEXT) == (
        b'{"section":"home","path":"/home/0","device":"web"}'
    )
    assert len(orm_envelope) == len(ada_cipher.seal_many([b""], CONTEXT)[0]) + len(
        b'{"section":"home","path":"/home/0","device":"web"}'
    )
    # The normal read path decrypts every generated row.
    assert len(decoded) == 2_501
    assert all(
        isinstance(v, dict) and set(v) == {"section", "path", "device"} for v in decoded.values()
    )


def test_erasure_shreds_generated_events(migrated_url: str, tmp_path: Path) -> None:
    engine = _generated(migrated_url, 1_500)
    linus = seed_id("core", "subjects", "linus")
    column = AnalyticsEvent.__table__.c["properties"].type
    with transaction(engine) as s:
        backup = [bytes(r[2]) for r in s.execute(RAW) if r[1] == linus]  # a copy kept elsewhere
        others = {
            r.id: r.properties for r in s.scalars(select(AnalyticsEvent)) if r.subject_id != linus
        }
        key_id = s.scalar(select(SubjectKey.id).where(SubjectKey.subject_id == linus))
    assert backup
    assert others
    assert key_id is not None
    read = column.result_processor(engine.dialect, None)
    assert read is not None
    assert all(isinstance(read(v), dict) for v in backup)
    with transaction(engine) as s:
        request = dsr.submit(
            s,
            type="erasure",
            identifiers={"subject_id": str(linus)},
            calendar=WorkCalendar("UTC"),
            actor="portal",
            verified=True,
        )
        dsr.approve(s, request.request.id, actor="dpo")
    result = dsr.process_request(engine, request.request.id, export_dir=tmp_path)
    assert result.state == "completed"
    with transaction(engine) as s:
        left = list(s.scalars(select(AnalyticsEvent.id).where(AnalyticsEvent.subject_id == linus)))
        assert s.scalar(select(SubjectKey.id).where(SubjectKey.subject_id == linus)) is None
        after = {r.id: r.properties for r in s.scalars(select(AnalyticsEvent))}
    engine.dispose()
    assert left == []
    # Every copy sealed under the destroyed key is noise now; nobody else's data is touched.
    assert [read(v) for v in backup] == [Shredded(key_id)] * len(backup)
    assert after == others


def test_generating_nothing_creates_no_subject_keys(migrated_url: str) -> None:
    engine = keyed_engine(migrated_url)
    with transaction(engine) as s:
        seed(s, "demo", domains=["core"])
    with transaction(engine) as s:
        before = set(s.scalars(select(SubjectKey.subject_id)))
        result = generate_events(s, 0, seed=5, end=END)
        after = set(s.scalars(select(SubjectKey.subject_id)))
    engine.dispose()
    assert result.rows == 0
    assert before == after
