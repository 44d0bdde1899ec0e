"""Recording and checking consent: notices, locales, expiry, staleness, GPC, bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from govern import consent
from govern.consent.models import ConsentRecord, ConsentState
from govern.consent.tcf import encode_core
from govern.db import transaction, write_transaction
from govern.errors import (
    ConsentError,
    DuplicateIdempotencyKeyError,
    InvalidTCFStringError,
    InvalidTimestampError,
    MissingLocaleError,
    UnknownNoticeError,
    UnknownPurposeError,
)

NOW = dt.datetime.now(dt.UTC)


def _count(engine: Engine) -> tuple[int, int]:
    with transaction(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(ConsentRecord)) or 0,
            s.scalar(select(func.count()).select_from(ConsentState)) or 0,
        )


def test_grant_then_withdraw_is_one_call_each(engine: Engine) -> None:
    with write_transaction(engine) as s:
        given = consent.grant(s, "u-1", "marketing.email", method="web_form", jurisdiction="FR")
    with transaction(engine) as s:
        first = consent.check(s, "u-1", "marketing.email")
    with write_transaction(engine) as s:
        consent.withdraw(s, "u-1", "marketing.email")
    with transaction(engine) as s:
        second = consent.check(s, "u-1", "marketing.email")
        records = consent.history(s, "u-1")
    assert (True, consent.Reason.GRANTED, given.record_id) == (
        first.allowed,
        first.reason,
        first.record_id,
    )
    assert (
        second.allowed,
        second.reason,
        second.reconsent_needed,
    ) == (False, consent.Reason.WITHDRAWN, False)
    assert [r.seq for r in records] == [1, 2]
    assert records[1].prev_hash == records[0].hash


def test_no_record_means_no_consent_but_other_bases_allow(engine: Engine) -> None:
    with transaction(engine) as s:
        assert consent.check(s, "u-x", "marketing.email").reason == consent.Reason.NO_RECORD
        assert consent.check(s, "u-x", "analytics.share").allowed


@pytest.mark.parametrize(
    ("requested", "shown"),
    [("fr-CA", "fr"), ("fr", "fr"), ("de-AT", "de-AT"), ("de", "en"), ("ja", "en"), (None, "en")],
)
def test_locale_fallback_records_the_text_actually_shown(
    engine: Engine, requested: str | None, shown: str
) -> None:
    with write_transaction(engine) as s:
        rec = consent.grant(s, "u-1", "marketing.email", locale=requested)
        text = consent.notice_text(s, "privacy", requested)
    assert (shown, shown) == (rec.locale, text.locale)


def test_material_change_makes_consent_stale_until_reconsent(engine: Engine) -> None:
    with write_transaction(engine) as s:
        consent.grant(s, "u-1", "marketing.email")
    before = dt.datetime.now(dt.UTC)
    with write_transaction(engine) as s:
        consent.add_notice_version(
            s,
            "privacy",
            consent.NoticeVersionIn(
                texts={"en": consent.NoticeTextIn(title="t", body="minor")},
            ),
        )
    with transaction(engine) as s:
        assert consent.check(s, "u-1", "marketing.email").allowed  # v2 is not material
    with write_transaction(engine) as s:
        consent.add_notice_version(
            s,
            "privacy",
            consent.NoticeVersionIn(
                material_change=True,
                texts={"en": consent.NoticeTextIn(title="t", body="new purposes")},
            ),
        )
    with transaction(engine) as s:
        stale = consent.check(s, "u-1", "marketing.email")
        past = consent.check(s, "u-1", "marketing.email", at=before)
    assert (
        stale.allowed,
        stale.reason,
        stale.reconsent_needed,
    ) == (False, consent.Reason.STALE_NOTICE, True)
    assert past.allowed
    with write_transaction(engine) as s:
        rec = consent.grant(s, "u-1", "marketing.email")
    with transaction(engine) as s:
        assert consent.check(s, "u-1", "marketing.email").allowed
    assert rec.notice_version == 3


def test_expired_consent_needs_reconsent_and_expire_due_appends(engine: Engine) -> None:
    t0 = NOW - dt.timedelta(days=400)
    with write_transaction(engine) as s:
        rec = consent.grant(s, "u-1", "marketing.email", occurred_at=t0)
    assert t0 + dt.timedelta(days=365) == rec.expires_at
    with transaction(engine) as s:
        d = consent.check(s, "u-1", "marketing.email")
        then = consent.check(s, "u-1", "marketing.email", at=t0 + dt.timedelta(days=1))
    assert (d.allowed, d.reason, d.reconsent_needed) == (False, consent.Reason.EXPIRED, True)
    assert then.allowed
    with write_transaction(engine) as s:
        expired = consent.expire_due(s)
    with transaction(engine) as s:
        status = consent.check(s, "u-1", "marketing.email").status
    assert [r.event for r in expired] == [consent.ConsentEvent.EXPIRED]
    assert status == consent.ConsentEvent.EXPIRED


def test_check_at_answers_from_history(engine: Engine) -> None:
    t = [NOW - dt.timedelta(days=d) for d in (30, 20, 10)]
    with write_transaction(engine) as s:
        consent.grant(s, "u-1", "ads.sale", occurred_at=t[0])
        consent.withdraw(s, "u-1", "ads.sale", occurred_at=t[1])
        consent.grant(s, "u-1", "ads.sale", occurred_at=t[2])
        # imported late, but older than everything: must not change the present
        consent.append(
            s,
            consent.ConsentIn(
                subject="u-1",
                purpose="ads.sale",
                event="refused",
                method="import",
                occurred_at=t[0] - dt.timedelta(days=1),
            ),
        )
    hour = dt.timedelta(hours=1)
    with transaction(engine) as s:
        answers = [
            consent.check(s, "u-1", "ads.sale", at=x).reason
            for x in (t[0] - 2 * hour * 24, t[0] - hour, t[0] + hour, t[1] + hour, t[2] + hour)
        ]
        now = consent.check(s, "u-1", "ads.sale").reason
    R = consent.Reason
    assert answers == [R.NO_RECORD, R.REFUSED, R.GRANTED, R.WITHDRAWN, R.GRANTED]
    assert now == R.GRANTED


def test_check_many_matches_check(engine: Engine) -> None:
    subjects = [f"u-{i}" for i in range(30)]
    now = dt.datetime.now(dt.UTC)
    with write_transaction(engine) as s:
        for i, subj in enumerate(subjects[:20]):
            consent.grant(s, subj, "marketing.email")
            if i % 3 == 0:
                consent.withdraw(s, subj, "marketing.email")
            if i % 4 == 1:
                consent.record_gpc(s, subj)
        for i, subj in enumerate(subjects[20:25]):
            # expired a second ago, or expiring in a minute
            ends = now + (dt.timedelta(minutes=1) if i % 2 else -dt.timedelta(seconds=1))
            consent.grant(
                s,
                subj,
                "marketing.email",
                occurred_at=now - dt.timedelta(days=1),
                expires_at=ends,
            )
    seen: dict[str, set[consent.Reason]] = {}
    with transaction(engine) as s:
        for purpose in ("marketing.email", "ads.sale", "analytics.share"):
            batch = consent.check_many(s, subjects, purpose)
            single = {x: consent.check(s, x, purpose).reason for x in subjects}
            assert single == batch.reasons
            assert {
                x
                for x in subjects
                if single[x] is consent.Reason.GRANTED or single[x] is consent.Reason.LEGAL_BASIS
            } == {x for x in subjects if batch.allowed(x)}
            seen[purpose] = set(single.values())
    R = consent.Reason
    assert seen["marketing.email"] == {R.GRANTED, R.WITHDRAWN, R.EXPIRED, R.NO_RECORD}
    assert seen["ads.sale"] == {R.NO_RECORD, R.REFUSED}
    assert seen["analytics.share"] == {R.LEGAL_BASIS, R.OBJECTION}


def test_gpc_objects_to_every_sale_or_sharing_purpose(engine: Engine) -> None:
    with write_transaction(engine) as s:
        consent.grant(s, "u-1", "ads.sale")
        consent.grant(s, "u-1", "marketing.email")
        recs = consent.record_gpc(s, "u-1", jurisdiction="US-CA")
    with transaction(engine) as s:
        verdicts = {p: consent.check(s, "u-1", p).allowed for p in ("ads.sale", "analytics.share")}
        assert consent.check(s, "u-1", "marketing.email").allowed
    assert {("ads.sale", "gpc"), ("analytics.share", "gpc")} == {
        (r.purpose, r.method.value) for r in recs
    }
    assert verdicts == {"ads.sale": False, "analytics.share": False}


def test_tcf_string_is_stored_verbatim(engine: Engine) -> None:
    tc = encode_core() + ".IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBA"
    with write_transaction(engine) as s:
        consent.grant(s, "u-1", "ads.sale", tcf_string=tc)
    with transaction(engine) as s:
        assert [tc] == [r.tcf_string for r in consent.history(s, "u-1")]


def _bad(**over: Any) -> dict[str, Any]:
    return {"subject": "u-1", "purpose": "marketing.email", "event": "given", **over}


BAD_INPUT = [
    (_bad(purpose="nope"), UnknownPurposeError),
    (_bad(notice_version=9), UnknownNoticeError),
    (_bad(locale="xx-not-a-locale"), ConsentError),
    # a day ahead: NOW is taken when the module is imported, maybe long before this runs
    (_bad(occurred_at=NOW + dt.timedelta(days=1)), InvalidTimestampError),
    (_bad(occurred_at=dt.datetime(2024, 1, 1)), InvalidTimestampError),
    (_bad(expires_at=NOW - dt.timedelta(days=1)), InvalidTimestampError),
    (_bad(tcf_string="not a tc string"), InvalidTCFStringError),
    (_bad(tcf_string="BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA"), InvalidTCFStringError),  # TCF v1
    (_bad(subject="alice@example.com"), ConsentError),
]


@pytest.mark.parametrize(("fields", "error"), BAD_INPUT)
def test_bad_input_raises_typed_error_and_appends_nothing(
    engine: Engine, fields: dict[str, Any], error: type[Exception]
) -> None:
    with write_transaction(engine) as s:
        consent.grant(s, "u-0", "ads.sale")
    before = _count(engine)
    good = consent.ConsentIn(subject="u-2", purpose="ads.sale", event="given")
    with pytest.raises(error), write_transaction(engine) as s:
        consent.append_many(s, [good, consent.ConsentIn(**fields)])
    assert before == _count(engine)


def test_locale_without_text_and_without_fallback(engine: Engine) -> None:
    with write_transaction(engine) as s:
        consent.add_notice(
            s,
            consent.NoticeIn(
                key="kids",
                title="Kids",
                default_locale="fr",
                controller="C",
                controller_contact="DPO",
                controller_email="dpo@example.com",
                controller_phone="1",
                controller_address="A",
                policy_url="https://example.com/kids",
                versions=[consent.NoticeVersionIn(texts={"fr": {"title": "t", "body": "b"}})],
            ),
        )
    with pytest.raises(MissingLocaleError), write_transaction(engine) as s:
        consent.add_notice_version(
            s, "kids", consent.NoticeVersionIn(texts={"de": {"title": "t", "body": "b"}})
        )


def test_duplicate_idempotency_key_is_refused(engine: Engine) -> None:
    with write_transaction(engine) as s:
        consent.grant(s, "u-1", "ads.sale", idempotency_key="req-1")
    before = _count(engine)
    with pytest.raises(DuplicateIdempotencyKeyError), write_transaction(engine) as s:
        consent.grant(s, "u-2", "ads.sale", idempotency_key="req-1")
    with pytest.raises(DuplicateIdempotencyKeyError), write_transaction(engine) as s:
        consent.append_many(
            s,
            [
                consent.ConsentIn(subject="u-3", purpose="ads.sale", event="given", **k)
                for k in ({"idempotency_key": "req-2"}, {"idempotency_key": "req-2"})
            ],
        )
    assert before == _count(engine)


def test_ledger_rows_cannot_be_updated_or_deleted(engine: Engine) -> None:
    from sqlalchemy.exc import DBAPIError

    with write_transaction(engine) as s:
        consent.grant(s, "u-1", "ads.sale")
    for stmt in ("UPDATE consent_records SET event = 'refused'", "DELETE FROM consent_records"):
        with pytest.raises(DBAPIError), transaction(engine) as s:
            s.connection().exec_driver_sql(stmt)
    assert _count(engine) == (1, 1)


def test_every_append_emits_an_event_in_the_same_transaction(engine: Engine) -> None:
    import json

    from govern.db import session_factory
    from govern.events import HookRegistry, OutboxEvent

    seen: list[str] = []
    hooks = HookRegistry()
    hooks.register("govern.consent.*", lambda ev: seen.append(ev.type))
    factory = session_factory(engine)
    hooks.attach(factory)
    with factory() as s, s.begin():
        consent.grant(s, "u-1", "marketing.email")
        consent.withdraw(s, "u-1", "marketing.email")
        consent.record_gpc(s, "u-2")
        assert seen == []  # hooks wait for the commit
    with factory() as s, s.begin():
        consent.grant(s, "u-3", "ads.sale")
        s.rollback()
    with transaction(engine) as s:
        events = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        records = consent.history(s, "u-1") + consent.history(s, "u-2")
    types = [
        "govern.consent.given",
        "govern.consent.withdrawn",
        "govern.consent.refused",
        "govern.consent.refused",
    ]
    assert types == [e.type for e in events]
    assert types == seen
    assert [str(r.record_id) for r in records] == [
        json.loads(e.payload)["data"]["record_id"] for e in events
    ]


def test_append_bulk_writes_what_append_many_writes(engine: Engine) -> None:
    import json

    from govern.events import OutboxEvent

    def items(prefix: str) -> list[consent.ConsentIn]:
        return [
            consent.ConsentIn(
                subject=f"{prefix}-{i % 2}",
                purpose=purpose,
                event=event,
                locale="fr-CA",
                jurisdiction="FR",
                idempotency_key=f"{prefix}-{i}",
                source_ip="192.0.2.1" if i == 1 else None,
            )
            for i, (purpose, event) in enumerate(
                [
                    ("marketing.email", "given"),
                    ("ads.sale", "refused"),
                    ("marketing.email", "withdrawn"),
                ]
            )
        ]

    with write_transaction(engine) as s:
        many = consent.append_many(s, items("m"))
        assert consent.append_bulk(s, items("b")) == 3
        assert consent.append_bulk(s, []) == 0
    with transaction(engine) as s:
        bulk = consent.history(s, "b-0") + consent.history(s, "b-1")
        data = [
            json.loads(e.payload)["data"]
            for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        ]
        assert consent.verify(s).ok
    varying = {"record_id", "subject", "idempotency_key", "hash", "prev_hash", "subject_id"}
    varying |= {"recorded_at", "occurred_at", "expires_at"}
    by_seq = sorted(many, key=lambda r: (r.subject, r.seq))
    assert [r.model_dump(exclude=varying) for r in by_seq] == [
        r.model_dump(exclude=varying) for r in bulk
    ]
    assert len(data) == 6
    same = [{k: v for k, v in d.items() if k not in varying} for d in data]
    assert same[:3] == same[3:]
    assert {d["record_id"] for d in data[3:]} == {str(r.record_id) for r in bulk}
    assert {d["hash"] for d in data[3:]} == {r.hash for r in bulk}


def test_event_data_is_what_the_events_encoder_writes_for_the_record(engine: Engine) -> None:
    """The append loop writes each event's data JSON itself; it must equal emit's encoding."""
    from govern.events import OutboxEvent
    from govern.events.service import _data_json

    with write_transaction(engine) as s:
        out = consent.append_many(
            s,
            [
                consent.ConsentIn(subject="é-1", purpose="marketing.email", event="given",
                                  locale="fr-CA", jurisdiction="FR", occurred_at=NOW),
                consent.ConsentIn(subject="é-1", purpose="ads.sale", event="refused",
                                  method="gpc", user_agent="Mozilla/5.0 ü"),
            ],
        )  # fmt: skip
    with transaction(engine) as s:
        rows = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    assert len(rows) == 2
    for r, rec in zip(rows, out, strict=True):
        import json

        written = json.loads(r.payload)["data"]
        expected = {
            "record_id": str(rec.record_id),
            "seq": rec.seq,
            "purpose": rec.purpose,
            "event": rec.event.value,
            "legal_basis": rec.legal_basis.value,
            "notice": rec.notice,
            "notice_version": rec.notice_version,
            "locale": rec.locale,
            "method": rec.method.value,
            "jurisdiction": rec.jurisdiction,
            "occurred_at": rec.occurred_at.isoformat(),
            "expires_at": None if rec.expires_at is None else rec.expires_at.isoformat(),
            "hash": rec.hash,
        }
        assert written == expected
        # Byte for byte what emit/emit_many would have written for that mapping.
        assert json.dumps(json.loads(r.payload)["data"], separators=(",", ":")) == _data_json(
            expected
        )
        assert (r.aggregatetype, r.aggregateid) == ("consent.subject", "é-1")
    assert "Mozilla" not in rows[1].payload  # the sealed user agent never reaches an event


def test_large_appends_pause_the_collector_and_always_restore_it(engine: Engine) -> None:
    import gc

    seen: list[bool] = []
    from govern.consent import service

    real = service._append_batch

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    def batch(prefix: str, purpose: str = "marketing.email") -> list[consent.ConsentIn]:
        n = service.GC_PAUSE_MIN_BATCH
        return [
            consent.ConsentIn(subject=f"{prefix}-{i}", purpose=purpose, event="given")
            for i in range(n)
        ]

    assert gc.isenabled()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(service, "_append_batch", spy)
        with transaction(engine) as s:
            consent.grant(s, "gc-0", "marketing.email")  # one record: collector left alone
        with transaction(engine) as s:
            consent.append_many(s, batch("gc-1"))
        with pytest.raises(UnknownPurposeError), transaction(engine) as s:
            consent.append_many(s, batch("gc-1", "no.such.purpose"))
        gc.disable()  # a host that runs without the collector keeps it off
        try:
            with transaction(engine) as s:
                consent.append_many(s, batch("gc-2"))
            assert not gc.isenabled()
        finally:
            gc.enable()
    assert seen == [True, False, False, False]
    assert gc.isenabled()
