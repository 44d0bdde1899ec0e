"""``govern consent ...``: exit codes, JSON output, one-line errors, database unchanged."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from govern import consent
from govern.cli import main
from govern.consent.models import ConsentRecord
from govern.db import create_engine, transaction
from tests.consent.conftest import CATALOG

SEED = base64.b64encode(bytes(range(32))).decode()

TOML = """
[[notices]]
key = "terms"
title = "Terms"
controller = "Example Shop Ltd"
controller_contact = "DPO"
controller_email = "dpo@example.com"
controller_phone = "+44 20 0000 0000"
controller_address = "1 High Street"
policy_url = "https://example.com/terms"

[[notices.versions]]
texts.en = { title = "Terms", body = "..." }

[[purposes]]
key = "orders"
name = "Fulfil orders"
legal_basis = "Contract"
notice = "terms"
"""


@pytest.fixture
def db(govern_env: Path, migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GOVERN_DATABASE_URL", migrated_url)
    (govern_env / "catalog.json").write_text(json.dumps(CATALOG))
    (govern_env / "catalog.toml").write_text(TOML)
    return migrated_url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _records(url: str) -> int:
    engine = create_engine(url)
    try:
        with transaction(engine) as s:
            return s.scalar(select(func.count()).select_from(ConsentRecord)) or 0
    finally:
        engine.dispose()


def test_consent_workflow(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(capsys, "consent", "load", "catalog.json")[0] == 0
    assert _run(capsys, "consent", "load", "catalog.toml")[0] == 0
    code, out, _ = _run(capsys, "consent", "purposes", "--json")
    assert {"ads.sale", "analytics.share", "marketing.email", "orders"} == {
        p["key"] for p in json.loads(out)["purposes"]
    }
    grant = ["consent", "grant", "--subject", "u-1", "--purpose", "marketing.email"]
    code, out, _ = _run(capsys, *grant, "--locale", "fr-CA", "--method", "web_form", "--json")
    assert (code, json.loads(out)["locale"]) == (0, "fr")
    code, out, _ = _run(
        capsys, "consent", "check", "--subject", "u-1", "--purpose", "marketing.email", "--json"
    )
    assert (code, json.loads(out)["allowed"]) == (0, True)
    assert (
        _run(capsys, "consent", "withdraw", "--subject", "u-1", "--purpose", "marketing.email")[0]
        == 0
    )
    code, out, _ = _run(
        capsys, "consent", "check", "--subject", "u-1", "--purpose", "marketing.email"
    )
    assert (code, out.strip()) == (0, "marketing.email: denied (withdrawn)")
    code, out, _ = _run(capsys, "consent", "history", "--subject", "u-1", "--json")
    assert [r["event"] for r in json.loads(out)["records"]] == ["given", "withdrawn"]
    code, out, _ = _run(capsys, "consent", "gpc", "--subject", "u-2", "--json")
    assert len(json.loads(out)["records"]) == 2
    monkeypatch.setenv("GOVERN_CONSENT_SIGNING_KEY", SEED)
    code, out, _ = _run(capsys, "consent", "checkpoint", "--json")
    assert (code, json.loads(out)["head_count"]) == (0, 2)
    code, out, _ = _run(capsys, "consent", "verify", "--json")
    assert (code, json.loads(out)["key_pinned"], json.loads(out)["findings"]) == (0, True, [])
    code, out, _ = _run(capsys, "consent", "export", "--format", "csv", "--output", "out.csv")
    assert (code, len(Path("out.csv").read_text().splitlines())) == (0, 5)
    code, out, _ = _run(capsys, "consent", "notice", "privacy", "--locale", "de-AT")
    assert out.splitlines()[0] == "Datenschutz [privacy v1, de-AT]"


def test_verify_exits_1_on_tampering(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "consent", "load", "catalog.json")
    _run(capsys, "consent", "grant", "--subject", "u-1", "--purpose", "ads.sale")
    engine = create_engine(db)
    with transaction(engine) as s:
        conn = s.connection()
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER consent_records_no_update")
        else:
            conn.exec_driver_sql("ALTER TABLE consent_records DISABLE TRIGGER USER")
        conn.exec_driver_sql("UPDATE consent_records SET event = 'refused'")
        rid = consent.history(s, "u-1")[0].record_id
    engine.dispose()
    code, out, _ = _run(capsys, "consent", "verify")
    assert code == 1
    assert f"first bad record: {rid}" in out.splitlines()


BAD = [
    ["grant", "--subject", "u-1", "--purpose", "nope"],
    ["grant", "--subject", "u-1", "--purpose", "ads.sale", "--notice-version", "7"],
    ["grant", "--subject", "u-1", "--purpose", "ads.sale", "--locale", "zz-not"],
    ["grant", "--subject", "u-1", "--purpose", "ads.sale", "--at", "2020-01-01T00:00:00"],
    ["grant", "--subject", "u-1", "--purpose", "ads.sale", "--at", "2999-01-01T00:00:00Z"],
    ["grant", "--subject", "u-1", "--purpose", "ads.sale", "--at", "yesterday"],
    ["grant", "--subject", "u-1", "--purpose", "ads.sale", "--tcf", "!!"],
    ["grant", "--subject", "u-1", "--purpose", "ads.sale", "--idempotency-key", "dup"],
    ["grant", "--subject", "u-1", "--purpose", "ads.sale", "--method", "carrier-pigeon"],
    ["grant", "--subject", "ann@example.com", "--purpose", "ads.sale"],
    ["check", "--subject", "u-1", "--purpose", "nope"],
    ["export", "--format", "xml", "--output", "x"],
    ["checkpoint"],
    ["load", "missing.toml"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a[:1] + a[-2:]) for a in BAD])
def test_bad_input_exits_2_with_one_line_and_appends_nothing(
    db: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    _run(capsys, "consent", "load", "catalog.json")
    _run(
        capsys,
        "consent",
        "grant",
        "--subject",
        "u-0",
        "--purpose",
        "ads.sale",
        "--idempotency-key",
        "dup",
    )
    before = _records(db)
    code, out, err = _run(capsys, "consent", *argv)
    assert (code, out, len(err.strip().splitlines())) == (2, "", 1)
    assert err.startswith("govern: error: ")
    assert "ann@example.com" not in err
    assert before == _records(db)
