"""Keys end to end on SQLite and PostgreSQL: domain models, tokens, shredding, key life cycle."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from govern.config import Settings, load_settings
from govern.db import create_engine, transaction
from govern.domains.analytics import AnalyticsEvent, AnalyticsSession, PageView
from govern.domains.commerce import Order, Payment
from govern.domains.core import AuditLog, Subject
from govern.errors import KeyInUseError, UsageError, WrongKekError
from govern.keys import (
    attach,
    detokenise,
    list_keys,
    load_keyring,
    lookup,
    provider_from_settings,
    reencrypt,
    retire,
    rewrap,
    rotate,
    scan_encryption,
    shred_subject,
)
from govern.keys.models import ShredProof, SubjectKey
from govern.types import Shredded
from tests.helpers import commit_between
from tests.keys.conftest import new_kek


def _subject(engine: Engine, **kw: object) -> uuid.UUID:
    sid = uuid.uuid4()
    with transaction(engine) as s:
        s.add(Subject(id=sid, external_ref=f"ext-{sid}", **kw))
    return sid


def test_personal_columns_are_sealed_and_searchable(engine: Engine) -> None:
    sid = _subject(engine, email="Ann@Example.com", given_name="Ann")
    with transaction(engine) as s:
        (found,) = lookup(s, Subject.email, "ann@example.com")
        assert (sid, "Ann@Example.com") == (found.id, found.email)
        assert [sid] == [x.id for x in lookup(s, Subject.external_ref, f"ext-{sid}")]
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT email, given_name FROM subjects")).one()
    assert all(b"Ann" not in bytes(v) for v in raw)
    assert scan_encryption(engine).ok


def test_card_numbers_are_tokenised_and_detokenising_is_audited(engine: Engine) -> None:
    sid = _subject(engine)
    with transaction(engine) as s:
        order = Order(subject_id=sid, currency="EUR", total_amount=Decimal("9.99"))
        s.add(order)
        s.flush()
        pay = Payment(
            order_id=order.id,
            subject_id=sid,
            method="card",
            card_number="4111 1111 1111 4242",
            bank_account="DE89370400440532013000",
            amount=Decimal("9.99"),
            currency="EUR",
        )
        s.add(pay)
    assert pay.card_number is not None
    assert pay.card_number.endswith("_4242")
    assert pay.bank_account is not None
    assert pay.bank_account.endswith("_3000")
    with transaction(engine) as s:
        assert (
            detokenise(s, pay.card_number, actor="support-7", purpose="chargeback")
            == "4111 1111 1111 4242"
        )
        row = s.scalars(select(AuditLog).where(AuditLog.action == "token.detokenise")).one()
    assert (
        row.actor,
        row.details,
    ) == ("support-7", {"kind": "card_number", "purpose": "chargeback"})
    assert "4111" not in str(row.details)
    with transaction(engine) as s, pytest.raises(UsageError, match="unknown token"):
        detokenise(s, "tok_" + "0" * 24 + "_4242", actor="x", purpose="y")


def test_shredding_a_subject_leaves_markers_and_a_proof(engine: Engine, settings: Settings) -> None:
    sid, other = _subject(engine), _subject(engine)
    with transaction(engine) as s:
        for who in (sid, other):
            sess = AnalyticsSession(subject_id=who, ip_address="10.0.0.1", user_agent="UA")
            s.add(sess)
            s.flush()
            s.add(AnalyticsEvent(subject_id=who, session_id=sess.id, type="x", properties={"a": 1}))
            s.add(PageView(subject_id=who, session_id=sess.id, url="/p", referrer=None))
        s.add(AnalyticsSession(subject_id=None, ip_address="10.9.9.9"))  # anonymous
    with transaction(engine) as s:
        result = shred_subject(s, sid, actor="dpo", reason="erasure 42")
        assert result is not None
        assert shred_subject(s, uuid.uuid4(), actor="dpo") is None
    fresh = create_engine(settings.database_url.get_secret_value())
    attach(fresh, settings)
    try:
        with transaction(fresh) as s:
            gone = s.scalars(select(AnalyticsEvent).where(AnalyticsEvent.subject_id == sid)).one()
            kept = s.scalars(select(AnalyticsEvent).where(AnalyticsEvent.subject_id == other)).one()
            assert isinstance(gone.properties, Shredded)
            assert not gone.properties
            assert kept.properties == {"a": 1}
            view = s.scalars(select(PageView).where(PageView.subject_id == sid)).one()
            assert isinstance(view.url, Shredded)
            anon = s.scalars(select(AnalyticsSession).where(AnalyticsSession.subject_id.is_(None)))
            assert [a.ip_address for a in anon] == ["10.9.9.9"]
            proof = s.scalars(select(ShredProof)).one()
            assert (result.subject_key_id, "dpo", "erasure 42") == (
                proof.subject_key_id,
                proof.actor,
                proof.reason,
            )
            assert str(sid) not in str(proof.__dict__)
            assert s.scalar(select(func.count()).select_from(SubjectKey)) == 1
    finally:
        fresh.dispose()
    assert scan_encryption(engine).ok


def test_rotate_reencrypt_retire(engine: Engine, settings: Settings) -> None:
    sids = [_subject(engine, email=f"u{i}@example.com") for i in range(7)]
    with transaction(engine) as s:
        keyring = load_keyring(s, provider_from_settings(settings))
    first = keyring.primary().key_id
    with transaction(engine) as s:
        new = rotate(s, keyring)
    assert new.state == "primary"
    assert new.id != first
    attach(engine, settings)
    with transaction(engine) as s:
        with pytest.raises(KeyInUseError, match="still seals"):
            retire(s, first)
        with pytest.raises(KeyInUseError, match="primary"):
            retire(s, new.id)
    _subject(engine, email="late@example.com")  # written under the new key
    for bad in ({"batch_size": 0}, {"pause": -1.0}, {"pause": float("nan")}):
        with pytest.raises(UsageError):
            reencrypt(engine, keyring, **bad)
    result = reencrypt(engine, keyring, batch_size=3, pause=0.001)
    assert result.values == 2 * 7  # external_ref and email of the seven
    assert reencrypt(engine, keyring).values == 0
    with transaction(engine) as s:
        assert retire(s, first).state == "retired"
    with transaction(engine) as s:
        states = {k.id: k.state for k in list_keys(s)}
        assert states[first] == "retired"
        assert {f"u{i}@example.com" for i in range(7)} == {
            s.get(Subject, sid).email
            for sid in sids  # type: ignore[union-attr]
        }
        # The blind-index root is not rotated: twins written before the rotation still match.
        assert [sids[3]] == [x.id for x in lookup(s, Subject.email, "u3@example.com")]
        assert [k.purpose for k in list_keys(s) if k.purpose != "data"] == ["blind"]
    assert scan_encryption(engine, keyring).ok


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_reencrypt_batches_hold_the_write_lock_against_a_live_application(
    engine: Engine, settings: Settings
) -> None:
    """Another connection writes between a batch's read and its write (a live application).

    A deferred SQLite transaction would then fail its own write at once ("database is
    locked"); the batch holds the write lock from its read, so the other writer must wait."""
    for i in range(5):
        _subject(engine, email=f"u{i}@example.com")
    with transaction(engine) as s:
        keyring = load_keyring(s, provider_from_settings(settings))
        rotate(s, keyring)
    attach(engine, settings)

    def first_batch_read(sql: str) -> bool:
        return "LIMIT" in sql and "subjects" in sql

    with commit_between(engine, first_batch_read) as other:  # the application's commit
        result = reencrypt(engine, keyring, batch_size=100)
    assert other == ["database is locked"]
    assert result.values == 2 * 5


def test_kek_change_rewraps_keys_only(engine: Engine, settings: Settings) -> None:
    sid = _subject(engine, email="a@example.com")
    with transaction(engine) as s:
        s.add(AnalyticsEvent(subject_id=sid, type="x", properties={"k": "v"}))
    url = settings.database_url.get_secret_value()
    old = settings.kek.get_secret_value()  # type: ignore[union-attr]
    newer = new_kek()
    with engine.connect() as conn:
        before = conn.execute(text("SELECT email FROM subjects")).scalar_one()
    wrong = load_settings({"GOVERN_DATABASE_URL": url, "GOVERN_KEK": newer})
    with transaction(engine) as s, pytest.raises(WrongKekError, match="neither GOVERN_KEK"):
        load_keyring(s, provider_from_settings(wrong))
    changing = load_settings(
        {"GOVERN_DATABASE_URL": url, "GOVERN_KEK": newer, "GOVERN_KEK_PREVIOUS": old}
    )
    with transaction(engine) as s:
        counts = rewrap(s, load_keyring(s, provider_from_settings(changing), create=False))
    assert counts == {"data_keys": 2, "subject_keys": 1}
    with engine.connect() as conn:
        assert before == conn.execute(text("SELECT email FROM subjects")).scalar_one()
    fresh = create_engine(url)
    attach(fresh, wrong)  # the new KEK alone now opens everything
    try:
        with transaction(fresh) as s:
            assert s.get(Subject, sid).email == "a@example.com"  # type: ignore[union-attr]
            # the blind-index root was rewrapped with the data keys
            assert [sid] == [x.id for x in lookup(s, Subject.email, "a@example.com")]
            assert s.scalars(select(AnalyticsEvent)).one().properties == {"k": "v"}
    finally:
        fresh.dispose()


def test_scan_finds_plaintext_planted_by_raw_sql(engine: Engine) -> None:
    sid = _subject(engine, email="a@example.com")
    assert scan_encryption(engine).ok
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE subjects SET phone = :p WHERE id = :i"),
            {"p": b"+44 20 7946 0000", "i": sid.hex if engine.dialect.name == "sqlite" else sid},
        )
        conn.execute(
            text(
                "INSERT INTO token_vault (token, kind, value, created_at) VALUES ('x', 'c', :v, :t)"
            ),
            {"v": b"\x01\x00\x00\x00\x01" + b"\x00" * 40, "t": "2024-01-01 00:00:00"},
        )
    report = scan_encryption(engine)
    bad = {f"{c.table}.{c.column}": c.bad for c in report.columns if c.bad}
    assert bad == {"subjects.phone": 1}
    assert not report.ok
    assert any("subjects.phone" in p for p in report.problems())
    assert "7946" not in " ".join(report.text_lines())
    from govern.crypto.keyring import holder

    sampled = scan_encryption(engine, holder(engine.dialect).keyring)
    assert sampled.decrypted_sample
    assert {"subjects.phone", "token_vault.value"} == {
        f"{c.table}.{c.column}" for c in sampled.columns if c.undecryptable
    }


def test_processes_starting_together_agree_on_the_first_keys(
    migrated_url: str, settings: Settings
) -> None:
    """Workers attaching at once to a new database create one primary key and one blind root."""
    workers = 6
    engines = [create_engine(migrated_url) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    seen: list[tuple[int, bytes]] = []
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        try:
            barrier.wait()
            keyring = attach(engine, settings)
            seen.append((keyring.primary().key_id, keyring.blind.key_for(b"subjects.email")))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for e in engines:
            e.dispose()
    assert errors == []
    assert len(seen) == workers
    assert len(set(seen)) == 1  # one primary, and every process's blind indexes match
    check = create_engine(migrated_url)
    try:
        with transaction(check) as s:
            assert sorted((k.purpose, k.state) for k in list_keys(s)) == [
                ("blind", "active"),
                ("data", "primary"),
            ]
    finally:
        check.dispose()
