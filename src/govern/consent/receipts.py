"""Exports for auditors: Kantara Consent Receipt v1.1, ISO/IEC TS 27560-shaped JSON, CSV.

Rows are streamed (``yield_per``; a server-side cursor on PostgreSQL) and written one at a
time, so memory stays flat whatever the ledger's size.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Generator, Iterator
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from govern.consent.models import ConsentRecord, Notice, NoticeVersion, Purpose
from govern.consent.schemas import CollectionMethod, ConsentEvent, LegalBasis

ExportFormat = Literal["kantara", "iso27560", "csv"]
FORMATS: tuple[str, ...] = ("kantara", "iso27560", "csv")

KANTARA_VERSION = "KI-CR-v1.1.0"
KANTARA_REQUIRED = (
    "version",
    "jurisdiction",
    "consentTimestamp",
    "collectionMethod",
    "consentReceiptID",
    "piiPrincipalId",
    "piiControllers",
    "policyUrl",
    "services",
    "sensitive",
    "spiCat",
)
KANTARA_CONTROLLER_REQUIRED = ("piiController", "contact", "address", "email", "phone")
KANTARA_SERVICE_REQUIRED = ("service", "purposes")
KANTARA_PURPOSE_REQUIRED = (
    "purpose",
    "purposeCategory",
    "consentType",
    "piiCategory",
    "termination",
    "thirdPartyDisclosure",
)

CSV_COLUMNS = (
    "record_id",
    "subject",
    "seq",
    "purpose",
    "event",
    "legal_basis",
    "notice",
    "notice_version",
    "locale",
    "method",
    "jurisdiction",
    "controller",
    "occurred_at",
    "recorded_at",
    "expires_at",
    "tcf_string",
    "prev_hash",
    "hash",
)

_METHOD_TEXT = {
    CollectionMethod.WEB_FORM: "web form",
    CollectionMethod.MOBILE_APP: "mobile app",
    CollectionMethod.API: "API",
    CollectionMethod.IMPORT: "import",
    CollectionMethod.GPC: "Global Privacy Control signal",
}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _rows(
    session: Session,
    subject: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> Iterator[tuple[ConsentRecord, Purpose, Notice, int]]:
    q = (
        select(ConsentRecord, Purpose, Notice, NoticeVersion.version)
        .join(Purpose, Purpose.id == ConsentRecord.purpose_id)
        .join(NoticeVersion, NoticeVersion.id == ConsentRecord.notice_version_id)
        .join(Notice, Notice.id == NoticeVersion.notice_id)
    )
    if subject is not None:
        q = q.where(ConsentRecord.subject_ref == subject)
    if since is not None:
        q = q.where(ConsentRecord.recorded_at >= since)
    if until is not None:
        q = q.where(ConsentRecord.recorded_at < until)
    q = q.order_by(ConsentRecord.recorded_at, ConsentRecord.subject_ref, ConsentRecord.seq)
    result = session.execute(q.execution_options(yield_per=2000))
    try:
        for row in result:
            yield row[0], row[1], row[2], row[3]
            session.expunge(row[0])
    finally:
        result.close()  # frees the server-side cursor when a caller stops early


def kantara_receipt(r: ConsentRecord, p: Purpose, n: Notice, version: int) -> dict[str, Any]:
    """One record as a Kantara Consent Receipt v1.1 (all required fields present)."""
    basis = LegalBasis(r.legal_basis)
    purpose = {
        "purpose": p.name,
        "purposeCategory": [p.key],
        "consentType": "EXPLICIT" if basis is LegalBasis.CONSENT else basis.value,
        "piiCategory": list(p.data_categories),
        "primaryPurpose": True,
        "termination": (
            f"until withdrawn or {r.expires_at.isoformat()}" if r.expires_at else "until withdrawn"
        ),
        "thirdPartyDisclosure": bool(p.third_parties),
    }
    if p.third_parties:
        purpose["thirdPartyName"] = ", ".join(p.third_parties)
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": r.jurisdiction or "",
        "consentTimestamp": int(r.occurred_at.timestamp()),
        "collectionMethod": _METHOD_TEXT[CollectionMethod(r.method)],
        "consentReceiptID": str(r.record_id),
        "language": r.locale,
        "piiPrincipalId": r.subject_ref,
        "piiControllers": [
            {
                "piiController": n.controller,
                "contact": n.controller_contact,
                "address": {"streetAddress": n.controller_address},
                "email": n.controller_email,
                "phone": n.controller_phone,
            }
        ],
        "policyUrl": n.policy_url,
        "services": [{"service": p.name, "purposes": [purpose]}],
        "sensitive": any(".health" in c or ".biometric" in c for c in p.data_categories),
        "spiCat": [c for c in p.data_categories if ".health" in c or ".biometric" in c],
        # Extensions (allowed by v1.1): the decision itself and its place in the chain.
        "consentStatus": ConsentEvent(r.event).dpv,
        "noticeVersion": f"{n.key} v{version}",
        "recordHash": r.hash,
    }


def iso27560_record(r: ConsentRecord, p: Purpose, n: Notice, version: int) -> dict[str, Any]:
    """One record shaped after ISO/IEC TS 27560 (consent record information structure)."""
    basis = LegalBasis(r.legal_basis)
    event = ConsentEvent(r.event)
    return {
        "schema_version": "ISO/IEC TS 27560:2023",
        "record_id": str(r.record_id),
        "record_sequence": r.seq,
        "pii_principal_id": r.subject_ref,
        "controller": {"name": n.controller, "contact": n.controller_email},
        "notice": {
            "id": n.key,
            "version": version,
            "language": r.locale,
            "url": n.policy_url,
        },
        "processing": {
            "purpose": p.key,
            "purpose_description": p.name,
            "legal_basis": basis.dpv,
            "legal_basis_gdpr": basis.gdpr_article,
            "personal_data": list(p.data_categories),
            "retention_days": p.retention_days,
            "third_parties": list(p.third_parties),
        },
        "event": {
            "type": event.value,
            "status": event.dpv,
            "time": r.occurred_at.isoformat(),
            "recorded": r.recorded_at.isoformat(),
            "method": CollectionMethod(r.method).value,
            "jurisdiction": r.jurisdiction,
            "expiry": _iso(r.expires_at),
            "tcf_string": r.tcf_string,
        },
        "integrity": {"prev_hash": r.prev_hash, "hash": r.hash, "algorithm": "sha256-chain-v1"},
    }


def _csv_row(r: ConsentRecord, p: Purpose, n: Notice, version: int) -> list[Any]:
    return [
        str(r.record_id),
        r.subject_ref,
        r.seq,
        p.key,
        r.event,
        r.legal_basis,
        n.key,
        version,
        r.locale,
        r.method,
        r.jurisdiction or "",
        r.controller,
        r.occurred_at.isoformat(),
        r.recorded_at.isoformat(),
        _iso(r.expires_at) or "",
        r.tcf_string or "",
        r.prev_hash or "",
        r.hash,
    ]


def export_lines(
    session: Session,
    fmt: ExportFormat,
    *,
    subject: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Generator[str, None, None]:
    """Lines of the export (JSON Lines for the JSON formats, CSV with a header).

    A generator over a server-side cursor: exhaust it or ``close()`` it before the
    transaction ends.
    """
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        yield buf.getvalue()
        for row in _rows(session, subject, since, until):
            buf.seek(0)
            buf.truncate()
            writer.writerow(_csv_row(*row))
            yield buf.getvalue()
        return
    shape = kantara_receipt if fmt == "kantara" else iso27560_record
    for row in _rows(session, subject, since, until):
        yield json.dumps(shape(*row), ensure_ascii=False, separators=(",", ":")) + "\n"
