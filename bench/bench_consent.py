"""Issue 4: the consent ledger on SQLite, each figure beside its peer in the same run.

- ``check`` through the public API beside a raw indexed lookup of the same projection row;
- ``check_many`` over 100,000 subjects (one query);
- appending with the hash chain, projection and outbox events, in batches of 1,000, beside
  a plain ``INSERT`` of the same rows into the same table, through ``append_many`` (a result
  per record) and ``append_bulk`` (a count), each with its CPU-time companion
  (``cpu_records_per_s``, ``time.process_time``: wall time is noisy on a shared machine);
- ``verify`` of one million records (bulk-loaded with valid chains, heads and projection).

``BENCH_CONSENT_SCALE`` (default 1.0) shrinks every size for a quick look.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid
from typing import Any, cast

from bench.common import emit, sqlite_url, timed, timed_cpu

SCALE = float(os.environ.get("BENCH_CONSENT_SCALE", "1"))
SUBJECTS = int(100_000 * SCALE)
CHECKS = int(50_000 * SCALE)
VERIFY_RECORDS = int(1_000_000 * SCALE)
BATCH = 1000

CATALOG: dict[str, Any] = {
    "notices": [
        {
            "key": "privacy",
            "title": "Privacy notice",
            "controller": "Example Ltd",
            "controller_contact": "DPO",
            "controller_email": "dpo@example.com",
            "controller_phone": "+44 20 0000 0000",
            "controller_address": "1 High Street",
            "policy_url": "https://example.com/privacy",
            "versions": [{"texts": {"en": {"title": "Privacy", "body": "..."}}}],
        }
    ],
    "purposes": [
        {
            "key": "marketing",
            "name": "Newsletter",
            "consent_validity_days": 365,
            "notice": "privacy",
        }
    ],
}


def _setup(url: str) -> Any:
    from govern import consent, migrations
    from govern.db import create_engine, transaction

    migrations.upgrade(url)
    engine = create_engine(url)
    with transaction(engine) as s:
        consent.load_catalog(s, consent.Catalog.model_validate(CATALOG))
    return engine


def _append_figures(url: str, peer_url: str, bulk_url: str) -> list[dict[str, Any]]:
    from sqlalchemy import Table

    from govern import consent
    from govern.consent.models import ConsentRecord
    from govern.db import transaction, write_transaction

    engine = _setup(url)
    items = [
        consent.ConsentIn(
            subject=f"s{i:07d}", purpose="marketing", event="given", method="web_form"
        )
        for i in range(SUBJECTS)
    ]
    appended: list[Any] = []

    def ledger() -> None:
        for i in range(0, len(items), BATCH):
            with write_transaction(engine) as s:
                appended.extend(consent.append_many(s, items[i : i + BATCH]))

    t_ledger, c_ledger = timed_cpu(ledger)
    # The peer inserts the very rows the ledger wrote (built outside the timed part).
    rows: list[dict[str, Any]] = [
        {
            "subject_ref": r.subject,
            "seq": r.seq,
            "record_id": r.record_id,
            "purpose_id": 1,
            "event": r.event.value,
            "notice_version_id": 1,
            "locale": r.locale,
            "legal_basis": r.legal_basis.value,
            "method": r.method.value,
            "jurisdiction": r.jurisdiction,
            "controller": r.controller,
            "occurred_at": r.occurred_at,
            "recorded_at": r.recorded_at,
            "expires_at": r.expires_at,
            "tcf_string": None,
            "idempotency_key": None,
            "prev_hash": r.prev_hash,
            "hash": r.hash,
        }
        for r in appended
    ]
    peer = _setup(peer_url)
    table = cast(Table, ConsentRecord.__table__)

    def plain() -> None:
        for i in range(0, len(rows), BATCH):
            with transaction(peer) as s:
                s.execute(table.insert(), rows[i : i + BATCH])

    t_plain, c_plain = timed_cpu(plain)
    peer.dispose()
    # The same appends through append_bulk (a count instead of a result object per record).
    bulk = _setup(bulk_url)

    def ledger_bulk() -> None:
        for i in range(0, len(items), BATCH):
            with write_transaction(bulk) as s:
                consent.append_bulk(s, items[i : i + BATCH])

    t_bulk, c_bulk = timed_cpu(ledger_bulk)
    bulk.dispose()
    out = [
        emit(
            "consent_append_chain_projection_outbox_sqlite",
            len(items) / t_ledger,
            "records/s",
            batch=BATCH,
            target_min=20_000,
            plain_insert_records_per_s=round(len(rows) / t_plain, 1),
            ratio_to_plain_insert=round(t_plain / t_ledger, 3),
            cpu_records_per_s=round(len(items) / c_ledger, 1),
            cpu_plain_insert_records_per_s=round(len(rows) / c_plain, 1),
        ),
        emit(
            "consent_append_bulk_chain_projection_outbox_sqlite",
            len(items) / t_bulk,
            "records/s",
            batch=BATCH,
            target_min=20_000,
            ratio_to_plain_insert=round(t_plain / t_bulk, 3),
            cpu_records_per_s=round(len(items) / c_bulk, 1),
        ),
    ]
    out += _check_figures(engine)
    engine.dispose()
    return out


def _check_figures(engine: Any) -> list[dict[str, Any]]:
    from govern import consent
    from govern.db import session_factory

    rng = random.Random(4)  # noqa: S311  (sampling subjects, not secrets)
    subjects = [f"s{rng.randrange(int(SUBJECTS * 1.1)):07d}" for _ in range(CHECKS)]
    with session_factory(engine)() as s:
        allowed = 0

        def api() -> None:
            nonlocal allowed
            allowed = sum(consent.check(s, x, "marketing").allowed for x in subjects)

        t_api = timed(api)
        raw = s.connection().connection.driver_connection
        sql = (
            "SELECT s.status, s.expires_at, s.notice_version FROM consent_purposes p "
            "LEFT JOIN consent_state s ON s.purpose_id = p.id AND s.subject_ref = ? "
            "WHERE p.key = ?"
        )

        def lookup() -> None:
            for x in subjects:
                raw.execute(sql, (x, "marketing")).fetchone()  # type: ignore[union-attr]

        t_raw = timed(lookup)
        many = [f"s{i:07d}" for i in range(SUBJECTS)]
        granted = 0

        def batch() -> None:
            nonlocal granted
            result = consent.check_many(s, many, "marketing")
            granted = sum(result.allowed(x) for x in many[:10])

        t_many = timed(batch)
    return [
        emit(
            "consent_check_api_sqlite",
            len(subjects) / t_api,
            "checks/s",
            target_min=50_000,
            raw_indexed_lookup_per_s=round(len(subjects) / t_raw, 1),
            ratio_to_raw=round(t_raw / t_api, 3),
            allowed=allowed,
        ),
        emit(
            "consent_check_many_sqlite",
            len(many) / t_many,
            "subject-checks/s",
            subjects=len(many),
            target_min=250_000,
        ),
    ]


def _bulk_ledger(engine: Any, total: int) -> None:
    """Write ``total`` valid records (10 per subject) with heads and projection, fast."""
    from sqlalchemy import Table, text

    from govern.consent import chain
    from govern.consent.models import ChainHead, ConsentRecord
    from govern.db import transaction

    table = cast(Table, ConsentRecord.__table__)
    heads = cast(Table, ChainHead.__table__)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    per = 10
    subjects = max(1, total // per)
    events = ["given", "withdrawn"]
    for start in range(0, subjects, 2000):
        rows: list[dict[str, Any]] = []
        head_rows: list[dict[str, Any]] = []
        for n in range(start, min(subjects, start + 2000)):
            subj = f"v{n:08d}"
            prev: str | None = None
            for seq in range(1, per + 1):
                rid = uuid.uuid4()
                when = t0 + dt.timedelta(minutes=seq)
                event = events[seq % 2]
                content = chain.canonical(
                    subject_ref=subj,
                    seq=seq,
                    record_id=rid,
                    purpose="marketing",
                    event=event,
                    notice="privacy",
                    notice_version=1,
                    locale="en",
                    legal_basis="Consent",
                    method="import",
                    jurisdiction=None,
                    controller="Example Ltd",
                    occurred_at=when,
                    recorded_at=when,
                    expires_at=None,
                    tcf_string=None,
                    idempotency_key=None,
                )
                digest = chain.link(content, prev)
                rows.append(
                    {
                        "subject_ref": subj,
                        "seq": seq,
                        "record_id": rid,
                        "purpose_id": 1,
                        "event": event,
                        "notice_version_id": 1,
                        "locale": "en",
                        "legal_basis": "Consent",
                        "method": "import",
                        "jurisdiction": None,
                        "controller": "Example Ltd",
                        "occurred_at": when,
                        "recorded_at": when,
                        "expires_at": None,
                        "tcf_string": None,
                        "idempotency_key": None,
                        "prev_hash": prev,
                        "hash": digest,
                    }
                )
                prev = digest
            head_rows.append({"subject_ref": subj, "seq": per, "hash": prev, "checkpointed_seq": 0})
        with transaction(engine) as s:
            s.execute(table.insert(), rows)
            s.execute(heads.insert(), head_rows)
    with transaction(engine) as s:
        s.execute(
            text(
                "INSERT INTO consent_state (subject_ref, purpose_id, status, seq, record_id, "
                "occurred_at, expires_at, notice_version) SELECT subject_ref, purpose_id, event, "
                "seq, record_id, occurred_at, expires_at, 1 FROM consent_records r WHERE seq = "
                "(SELECT max(seq) FROM consent_records x WHERE x.subject_ref = r.subject_ref)"
            )
        )


def _verify_figure(url: str) -> dict[str, Any]:
    from govern import consent
    from govern.db import transaction

    engine = _setup(url)
    _bulk_ledger(engine, VERIFY_RECORDS)
    report = None

    def run() -> None:
        nonlocal report
        with transaction(engine) as s:
            report = consent.verify(s)

    t = timed(run)
    engine.dispose()
    assert report is not None
    return emit(
        "consent_verify_sqlite",
        report.records / t,
        "records/s",
        records=report.records,
        seconds=round(t, 2),
        findings=len(report.findings),
    )


def run() -> list[dict[str, Any]]:
    rows = []
    with sqlite_url() as url, sqlite_url() as peer, sqlite_url() as bulk:
        rows += _append_figures(url, peer, bulk)
    with sqlite_url() as url:
        rows.append(_verify_figure(url))
    return rows
