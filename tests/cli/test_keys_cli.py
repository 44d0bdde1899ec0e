"""``govern keys ...`` and ``govern scan encryption`` on the command line."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from govern.cli import main
from govern.db import create_engine
from tests.helpers import schema_snapshot


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def env(govern_env: Path, monkeypatch: pytest.MonkeyPatch, migrated_url: str) -> str:
    monkeypatch.setenv("GOVERN_DATABASE_URL", migrated_url)
    monkeypatch.setenv("GOVERN_KEK", base64.b64encode(os.urandom(32)).decode())
    return migrated_url


def test_rotate_list_and_retire_refusals(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "keys", "rotate")[0] == 0
    code, out, _ = run(capsys, "keys", "list", "--json")
    keys = json.loads(out)["keys"]
    assert [(k["purpose"], k["state"]) for k in keys] == [
        ("data", "active"),
        ("blind", "active"),
        ("data", "primary"),
    ]
    assert all("wrapped" not in json.dumps(k) for k in keys)
    before = schema_snapshot(env)
    code, out, err = run(capsys, "keys", "retire", str(keys[2]["id"]))
    assert (code, out) == (2, "")
    assert err.startswith("govern: error: data key")
    assert "primary" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "keys", "retire", "999")
    assert code == 2
    assert "no data key 999" in err
    for bad in ("-1", "nan", "inf", "1e300", "3601"):
        code, out, err = run(capsys, "keys", "reencrypt", "--pause", bad)
        assert (code, out) == (2, "")
        assert err.startswith("govern: error: pause must be")
        assert len(err.strip().splitlines()) == 1
    assert before == schema_snapshot(env)
    code, out, _ = run(capsys, "keys", "reencrypt", "--json")
    assert (code, json.loads(out)["values"]) == (0, 0)
    code, out, _ = run(capsys, "keys", "retire", str(keys[0]["id"]), "--json")
    assert (code, json.loads(out)["key"]["state"]) == (0, "retired")


def test_scan_exit_status_follows_findings(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "scan", "encryption", "--json")
    assert code == 0
    assert json.loads(out)["gaps"] == []
    engine = create_engine(env)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (occurred_at, actor, action, target_type, details)"
                " VALUES ('2024-01-01 00:00:00', 'a', 'b', 'c', '{}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO communities (id, slug, name, created_at) VALUES "
                "('00000000000000000000000000000001', 's', 'n', '2024-01-01 00:00:00')"
            )
            if engine.dialect.name == "sqlite"
            else text(
                "INSERT INTO communities (id, slug, name, created_at) VALUES "
                "('00000000-0000-0000-0000-000000000001', 's', 'n', '2024-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO posts (id, community_id, title, body, created_at) VALUES "
                "(:p, :c, :t, :t, '2024-01-01 00:00:00')"
            ),
            {
                "p": "00000000000000000000000000000002"
                if engine.dialect.name == "sqlite"
                else "00000000-0000-0000-0000-000000000002",
                "c": "00000000000000000000000000000001"
                if engine.dialect.name == "sqlite"
                else "00000000-0000-0000-0000-000000000001",
                "t": b"plaintext post by raw SQL",
            },
        )
    engine.dispose()
    code, out, err = run(capsys, "scan", "encryption")
    assert code == 1, out
    assert "GAP posts.title: 1 of 1 value(s) are not encrypted" in out
    assert "plaintext post" not in out + err
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "FAIL encryption coverage" in out


def test_key_commands_need_a_kek(
    govern_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    migrated_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GOVERN_DATABASE_URL", migrated_url)
    code, out, err = run(capsys, "keys", "rotate")
    assert (code, out) == (2, "")
    assert "GOVERN_KEK is not set" in err
    code, out, _ = run(capsys, "doctor")
    assert code == 0
    assert "nothing sealed yet" in out
