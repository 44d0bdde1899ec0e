"""The seed, credentials and audit commands end to end, with their exit statuses."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path

import pytest

from govern.cli import main
from tests.helpers import table_counts

KEY = base64.b64encode(bytes(range(32))).decode()
KEK = base64.b64encode(bytes(range(1, 33))).decode()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def url_env(govern_env: Path, monkeypatch: pytest.MonkeyPatch, migrated_url: str) -> str:
    monkeypatch.setenv("GOVERN_DATABASE_URL", migrated_url)
    monkeypatch.setenv("GOVERN_KEK", KEK)
    from govern.config import load_settings
    from govern.db import create_engine
    from govern.keys import attach

    engine = create_engine(migrated_url)  # a database in use: its first data keys exist
    attach(engine, load_settings())
    engine.dispose()
    return migrated_url


def test_seed_twice_is_a_no_op(url_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "seed", "--env", "sandbox", "--json")
    assert code == 0
    assert sum(t["inserted"] for t in json.loads(out)["tables"]) > 0
    code, out, _ = run(capsys, "seed", "--env", "sandbox")
    assert code == 0
    assert "0 change(s)" in out


def test_seed_scale_and_generate(url_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "seed", "--domain", "analytics", "--scale", "2000", "--json")
    assert code == 0
    assert json.loads(out)["generated"]["rows"] == 2000
    code, out, _ = run(capsys, "seed", "generate-events", "500", "--seed", "7")
    assert code == 0
    assert "inserted 500 rows into analytics_events" in out
    assert table_counts(url_env)["analytics_events"] == 2500


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("seed", "--env", "prod"), "unknown environment 'prod'"),
        (("seed", "--domain", "nope"), "unknown domain 'nope'"),
        (("seed", "generate-events", "10"), "run `govern seed` first"),
        (("audit", "export", "--out", "b.zip"), "GOVERN_AUDIT_SIGNING_KEY is not set"),
        (("audit", "verify", "missing.zip"), "no such file"),
        (("audit", "verify", "x.zip", "--public-key", "abc"), "--public-key must be base64"),
        (("credentials", "rotate", "--account", "ghost"), "no account named 'ghost'"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_changed(
    url_env: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    before = table_counts(url_env)
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert message in err
    assert err.count("\n") == 1
    assert table_counts(url_env) == before


def test_scan_exit_1_then_purge(url_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import select

    from govern.config import load_settings
    from govern.db import create_engine, transaction
    from govern.domains.core import Account
    from govern.keys import attach

    run(capsys, "seed", "--env", "staging")
    assert run(capsys, "credentials", "scan")[0] == 0
    engine = create_engine(url_env)
    attach(engine, load_settings())
    with transaction(engine) as session:
        smoke = next(a for a in session.scalars(select(Account)) if a.username == "smoke-1")
        smoke.password_hash = "5f4dcc3b5aa765d61d8327deb882cf99"  # md5("password")
    engine.dispose()
    code, out, _ = run(capsys, "credentials", "scan", "--json")
    kinds = sorted(f["kind"] for f in json.loads(out)["findings"])
    assert (code, kinds) == (1, ["demo_password", "outdated_scheme"])
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "FAIL credentials" in out
    assert run(capsys, "credentials", "purge-demo", "--by", "secops")[0] == 0
    assert run(capsys, "credentials", "scan")[0] == 0


def test_rotate_prints_secrets_once(url_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "seed", "--env", "staging")
    code, out, _ = run(capsys, "credentials", "rotate", "--json")
    rotated = json.loads(out)["rotated"]
    assert code == 0
    assert {r["username"] for r in rotated} == {"svc-reporting", "svc-deploy"}
    assert all(len(r["secret"]) >= 32 for r in rotated)


def test_export_and_verify(
    url_env: str,
    govern_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GOVERN_AUDIT_SIGNING_KEY", KEY)
    run(capsys, "seed")
    code, out, _ = run(capsys, "audit", "export", "--out", "b.zip", "--from", "2020-01-01")
    assert code == 0
    assert "not available in this version" not in out
    assert KEY not in out
    code, out, _ = run(capsys, "audit", "verify", "b.zip")
    assert code == 0
    assert "pinned key" in out
    with zipfile.ZipFile("b.zip") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["ropa/ropa.csv"] = members["ropa/ropa.csv"].replace(b"core", b"kore", 1)
    with zipfile.ZipFile("t.zip", "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    code, out, _ = run(capsys, "audit", "verify", "t.zip")
    assert code == 1
    assert "FAIL altered: ropa/ropa.csv" in out


def test_keygen(govern_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "keygen", "--json")
    doc = json.loads(out)
    assert code == 0
    assert len(base64.b64decode(doc["private_key"])) == 32
    assert doc["private_key"] != doc["public_key"]
