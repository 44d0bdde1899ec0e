"""Exports: Kantara Consent Receipt v1.1 fields, ISO/IEC TS 27560 shape, CSV, streaming."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import uuid
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from govern import consent
from govern.consent.receipts import (
    CSV_COLUMNS,
    KANTARA_CONTROLLER_REQUIRED,
    KANTARA_PURPOSE_REQUIRED,
    KANTARA_REQUIRED,
    KANTARA_SERVICE_REQUIRED,
)
from govern.db import transaction, write_transaction

# Kantara Consent Receipt Specification v1.1, section 5: required fields and their JSON types.
KANTARA_TYPES: dict[str, type | tuple[type, ...]] = {
    "version": str,
    "jurisdiction": str,
    "consentTimestamp": int,
    "collectionMethod": str,
    "consentReceiptID": str,
    "piiPrincipalId": str,
    "piiControllers": list,
    "policyUrl": str,
    "services": list,
    "sensitive": bool,
    "spiCat": list,
}


def _valid_kantara(receipt: dict[str, Any]) -> list[str]:
    problems = [f"missing {k}" for k in KANTARA_REQUIRED if k not in receipt]
    problems += [
        f"{k} is not {t}"
        for k, t in KANTARA_TYPES.items()
        if k in receipt and not isinstance(receipt[k], t)
    ]
    if receipt.get("version") != "KI-CR-v1.1.0":
        problems.append("version")
    for c in receipt.get("piiControllers", []):
        problems += [f"controller missing {k}" for k in KANTARA_CONTROLLER_REQUIRED if k not in c]
    for svc in receipt.get("services", []):
        problems += [f"service missing {k}" for k in KANTARA_SERVICE_REQUIRED if k not in svc]
        for p in svc.get("purposes", []):
            problems += [f"purpose missing {k}" for k in KANTARA_PURPOSE_REQUIRED if k not in p]
            if p.get("thirdPartyDisclosure") and "thirdPartyName" not in p:
                problems.append("thirdPartyName required when disclosed")
            if not isinstance(p.get("purposeCategory"), list) or not isinstance(
                p.get("piiCategory"), list
            ):
                problems.append("categories must be arrays")
    uuid.UUID(receipt["consentReceiptID"])
    return problems


def _fill(engine: Engine) -> None:
    with write_transaction(engine) as s:
        consent.grant(
            s, "u-1", "marketing.email", locale="fr", method="web_form", jurisdiction="FR"
        )
        consent.grant(s, "u-2", "ads.sale", method="mobile_app")
        consent.record_gpc(s, "u-3", jurisdiction="US-CA")
        consent.withdraw(s, "u-1", "marketing.email")


def test_kantara_receipts_have_every_required_field(engine: Engine) -> None:
    _fill(engine)
    with transaction(engine) as s:
        receipts = [json.loads(line) for line in consent.export_lines(s, "kantara")]
    assert len(receipts) == 5
    assert [_valid_kantara(r) for r in receipts] == [[]] * 5
    first = receipts[0]
    assert (
        first["piiPrincipalId"],
        first["jurisdiction"],
        first["collectionMethod"],
        first["language"],
    ) == ("u-1", "FR", "web form", "fr")
    assert {"thirdPartyName": "AdCo"}.items() <= receipts[1]["services"][0]["purposes"][0].items()


def test_validator_rejects_a_receipt_missing_a_required_field(engine: Engine) -> None:
    _fill(engine)
    with (
        transaction(engine) as s,
        contextlib.closing(consent.export_lines(s, "kantara")) as lines,
    ):
        receipt = json.loads(next(lines))
    del receipt["piiControllers"][0]["phone"]
    receipt["sensitive"] = "no"
    assert _valid_kantara(receipt) == [
        "sensitive is not <class 'bool'>",
        "controller missing phone",
    ]


def test_iso27560_and_csv_exports(engine: Engine) -> None:
    _fill(engine)
    with transaction(engine) as s:
        iso = [json.loads(line) for line in consent.export_lines(s, "iso27560", subject="u-1")]
        text = "".join(consent.export_lines(s, "csv"))
        history = consent.history(s, "u-1")
    assert [r["event"]["status"] for r in iso] == ["dpv:ConsentGiven", "dpv:ConsentWithdrawn"]
    assert [str(r.record_id) for r in history] == [r["record_id"] for r in iso]
    assert iso[0]["processing"]["legal_basis_gdpr"] == "dpv-gdpr:A6-1-a"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(CSV_COLUMNS) == list(rows[0])
    assert len(rows) == 5
    assert {"gpc"} == {r["method"] for r in rows if r["subject"] == "u-3"}


def test_time_range_export(engine: Engine) -> None:
    _fill(engine)
    later = dt.datetime.now(dt.UTC)
    with write_transaction(engine) as s:
        consent.grant(s, "u-9", "ads.sale")
    with transaction(engine) as s:
        recent = [json.loads(x) for x in consent.export_lines(s, "iso27560", since=later)]
        before = list(consent.export_lines(s, "iso27560", until=later))
    assert [r["pii_principal_id"] for r in recent] == ["u-9"]
    assert len(before) == 5


@pytest.mark.parametrize("fmt", ["kantara", "iso27560", "csv"])
def test_export_is_a_lazy_stream(engine: Engine, fmt: str) -> None:
    _fill(engine)
    with (
        transaction(engine) as s,
        contextlib.closing(consent.export_lines(s, fmt)) as lines,  # type: ignore[arg-type]
    ):
        assert not isinstance(lines, list)
        assert next(lines)
