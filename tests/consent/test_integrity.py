"""Tamper evidence: verify finds every single mutation of stored records, and forged checkpoints."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from govern import consent
from govern.consent import chain
from govern.consent.models import (
    ChainHead,
    Checkpoint,
    CheckpointHead,
    ConsentRecord,
    ConsentState,
    NoticeVersion,
    Purpose,
)
from govern.consent.tcf import encode_core
from govern.db import session_factory, write_transaction

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
RECORDS = cast(Table, ConsentRecord.__table__)
COLUMNS = [c.name for c in RECORDS.columns]


def _fill(engine: Engine, checkpoint: bool = True) -> None:
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    with write_transaction(engine) as s:
        for i in range(4):
            subj = f"u-{i}"
            consent.grant(s, subj, "marketing.email", occurred_at=t0, jurisdiction="FR")
            consent.grant(s, subj, "ads.sale", idempotency_key=f"k-{i}", tcf_string=encode_core())
            if i % 2:
                consent.withdraw(s, subj, "marketing.email", locale="fr")
        consent.add_notice_version(
            s, "privacy", consent.NoticeVersionIn(texts={"en": {"title": "t", "body": "v2"}})
        )
        if checkpoint:
            consent.create_checkpoint(s, KEY)
        consent.grant(s, "u-0", "analytics.share")


@pytest.fixture
def filled(engine: Engine) -> Engine:
    _fill(engine)
    return engine


def _tamper_session(engine: Engine) -> Iterator[Session]:
    session = session_factory(engine)()
    session.begin()
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        for table in ("consent_records", "consent_checkpoints", "consent_checkpoint_heads"):
            for verb in ("update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_{verb}")
    else:
        for table in ("consent_records", "consent_checkpoints", "consent_checkpoint_heads"):
            conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _rows(s: Session) -> list[dict[str, Any]]:
    q = select(RECORDS).order_by(RECORDS.c.subject_ref, RECORDS.c.seq)
    return [dict(r._mapping) for r in s.execute(q)]


def _other(s: Session, column: str, value: Any) -> Any:
    """A different value of the same kind, as an attacker would write."""
    if column == "subject_ref":
        return "intruder"
    if column == "seq":
        return value + 10
    if column == "record_id":
        return uuid.uuid4()
    if column == "purpose_id":
        return next(i for i in s.scalars(select(Purpose.id)) if i != value)
    if column == "notice_version_id":
        return next(i for i in s.scalars(select(NoticeVersion.id)) if i != value)
    if column in ("occurred_at", "recorded_at"):
        return value + dt.timedelta(microseconds=1)
    if column == "expires_at":
        return dt.datetime(2030, 1, 1, tzinfo=dt.UTC) if value is None else None
    if column == "tcf_string":
        return encode_core(language="FR") if value is None else None
    if column in ("idempotency_key", "jurisdiction"):
        return "DE" if value is None else None
    if column in ("prev_hash", "hash"):
        return "0" * 64 if value is None else ("1" if value[0] == "0" else "0") + value[1:]
    if column == "event":
        return "refused" if value != "refused" else "given"
    if column == "legal_basis":
        return "Contract"
    if column == "method":
        return "import" if value != "import" else "api"
    if column == "locale":
        return "de" if value != "de" else "en"
    return value + "x"


MUTATIONS = st.one_of(
    st.tuples(st.just("update"), st.integers(0, 1000), st.sampled_from(COLUMNS)),
    st.tuples(st.just("delete"), st.integers(0, 1000), st.just("")),
    st.tuples(st.just("insert"), st.integers(0, 1000), st.just("")),
    st.tuples(st.just("swap"), st.integers(0, 1000), st.just("")),
)


def _mutate(s: Session, kind: str, index: int, column: str) -> None:
    rows = _rows(s)
    row = rows[index % len(rows)]
    where = RECORDS.c.record_id == row["record_id"]
    if kind == "update":
        s.execute(update(RECORDS).where(where).values({column: _other(s, column, row[column])}))
    elif kind == "delete":
        s.execute(delete(RECORDS).where(where))
    elif kind == "insert":
        top = max(r["seq"] for r in rows if r["subject_ref"] == row["subject_ref"])
        forged = {**row, "record_id": uuid.uuid4(), "seq": top + 1, "idempotency_key": None}
        s.execute(insert(RECORDS).values(forged))
    else:  # swap a record with its successor in the same chain (reordering)
        nxt = next(
            (r for r in rows if r["subject_ref"] == row["subject_ref"] and r["seq"] > row["seq"]),
            None,
        )
        if nxt is None:
            nxt = next(r for r in rows if r["subject_ref"] == row["subject_ref"])
            if nxt is row:  # a one-record chain: move it instead
                s.execute(update(RECORDS).where(where).values(seq=row["seq"] + 1))
                return
        other = RECORDS.c.record_id == nxt["record_id"]
        s.execute(update(RECORDS).where(where).values(seq=-1))
        s.execute(update(RECORDS).where(other).values(seq=row["seq"]))
        s.execute(update(RECORDS).where(where).values(seq=nxt["seq"]))


def test_untouched_ledger_verifies(filled: Engine) -> None:
    with write_transaction(filled) as s:
        report = consent.verify(s, consent.public_key_of(KEY))
    assert (
        report.ok,
        report.findings,
        report.records,
        report.subjects,
        report.checkpoints,
    ) == (True, [], 11, 4, 1)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutation=MUTATIONS)
def test_every_single_mutation_is_detected(filled: Engine, mutation: tuple[str, int, str]) -> None:
    for s in _tamper_session(filled):
        _mutate(s, *mutation)
        report = consent.verify(s, consent.public_key_of(KEY))
        assert not report.ok, mutation


def test_finding_names_the_first_bad_record(filled: Engine) -> None:
    for s in _tamper_session(filled):
        row = _rows(s)[2]
        s.execute(
            update(RECORDS).where(RECORDS.c.record_id == row["record_id"]).values(event="refused")
        )
        report = consent.verify(s)
        assert row["record_id"] == report.first_bad_record
        assert report.findings[0].kind == "modified"


def test_consistent_truncation_is_caught_by_the_checkpoint(filled: Engine) -> None:
    """Delete a signed record and fix the head and projection: only the signature can tell."""
    for s in _tamper_session(filled):
        rows = [r for r in _rows(s) if r["subject_ref"] == "u-1"]
        last, prev = rows[-1], rows[-2]
        s.execute(delete(RECORDS).where(RECORDS.c.record_id == last["record_id"]))
        s.execute(
            update(ChainHead)
            .where(ChainHead.subject_ref == "u-1")
            .values(seq=prev["seq"], hash=prev["hash"])
        )
        first = rows[0]  # the marketing grant that the withdrawal had replaced
        s.execute(
            update(ConsentState)
            .where(
                ConsentState.subject_ref == "u-1", ConsentState.purpose_id == first["purpose_id"]
            )
            .values(
                status="given",
                seq=first["seq"],
                record_id=first["record_id"],
                occurred_at=first["occurred_at"],
                expires_at=first["expires_at"],
            )
        )
        report = consent.verify(s, consent.public_key_of(KEY))
        assert [f.kind for f in report.findings] == ["rewritten"]
        assert report.findings[0].checkpoint == 1


def _resign(s: Session, key: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    cp = s.scalars(select(Checkpoint)).one()
    message = chain.checkpoint_message(
        checkpoint_id=cp.id,
        created_at=cp.created_at,
        record_count=cp.record_count - 1,
        head_count=cp.head_count,
        heads_digest=cp.heads_digest,
        prev_digest=cp.prev_digest,
    )
    sig = base64.b64encode(Ed25519PrivateKey.from_private_bytes(key).sign(message)).decode()
    s.execute(
        update(Checkpoint).values(
            record_count=cp.record_count - 1, signature=sig, public_key=consent.public_key_of(key)
        )
    )


def test_forged_checkpoint_is_caught_when_the_key_is_pinned(filled: Engine) -> None:
    for s in _tamper_session(filled):
        _resign(s, OTHER_KEY)
        pinned = consent.verify(s, consent.public_key_of(KEY))
        unpinned = consent.verify(s)
        assert {"forged_checkpoint"} == {f.kind for f in pinned.findings}
        assert (unpinned.ok, unpinned.key_pinned) == (True, False)


@pytest.mark.parametrize("field", ["signature", "record_count", "heads_digest"])
def test_edited_checkpoint_fails_its_signature(filled: Engine, field: str) -> None:
    for s in _tamper_session(filled):
        cp = s.scalars(select(Checkpoint)).one()
        value = getattr(cp, field)
        new = value + 1 if isinstance(value, int) else ("A" if value[0] != "A" else "B") + value[1:]
        s.execute(update(Checkpoint).values({field: new}))
        assert not consent.verify(s).ok


def test_edited_signed_head_is_caught(filled: Engine) -> None:
    for s in _tamper_session(filled):
        s.execute(update(CheckpointHead).where(CheckpointHead.subject_ref == "u-2").values(seq=1))
        assert "forged_checkpoint" in {f.kind for f in consent.verify(s).findings}


def test_second_checkpoint_signs_only_changed_heads_and_links(filled: Engine) -> None:
    with write_transaction(filled) as s:
        consent.grant(s, "u-9", "ads.sale")
        cp = consent.create_checkpoint(s, KEY)
        report = consent.verify(s, consent.public_key_of(KEY))
    assert (cp.id, cp.head_count) == (2, 2)  # u-0 (after checkpoint 1) and u-9
    assert report.ok


def test_projection_drift_is_reported(filled: Engine) -> None:
    for s in _tamper_session(filled):
        s.execute(
            update(ConsentState).where(ConsentState.subject_ref == "u-1").values(status="given")
        )
        assert "projection" in {f.kind for f in consent.verify(s).findings}
