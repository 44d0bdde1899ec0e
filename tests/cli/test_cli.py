"""The command line end to end: output, --json, exit statuses, one-line errors, nothing changed."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from govern.cli import main
from tests.helpers import schema_snapshot, versions


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def url_env(govern_env: Path, monkeypatch: pytest.MonkeyPatch, migrated_url: str) -> str:
    monkeypatch.setenv("GOVERN_DATABASE_URL", migrated_url)
    return migrated_url


def test_quickstart_creates_govern_db_here(
    govern_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "quickstart")
    assert (code, err) == (0, "")
    assert (govern_env / "govern.db").exists()
    assert "up to date" in out
    assert "FAIL" not in out
    assert "done     seed demo environment" in out
    assert "done     verify audit bundle" in out
    assert "done     record consents: 20 new decision(s)" in out
    assert re.search(r"done     simulate retention: 4 polic\(ies\), 0 approved: \d+ row", out)
    assert "not available in this version" not in out
    assert re.search(r"done     process access request: request \S+ completed", out)
    assert re.search(r"done     process erasure request: request \S+ completed", out)
    package = Path(re.findall(r"access package: (\S+\.zip)", out)[0])
    assert package.parent == (govern_env / "dsr-exports").resolve()
    with zipfile.ZipFile(package) as zf:
        assert "manifest.json" in zf.namelist()
    with zipfile.ZipFile(govern_env / "govern-audit.zip") as zf:
        register = list(csv.DictReader(io.StringIO(zf.read("dsr/register.csv").decode())))
    assert sorted((r["type"], r["state"], r["channel"]) for r in register) == [
        ("access", "completed", "quickstart"),
        ("erasure", "completed", "quickstart"),
    ]
    key = govern_env / "govern.db.audit-signing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_text().strip() not in out
    assert run(capsys, "audit", "verify", "govern-audit.zip")[0] == 0
    code, out, _ = run(capsys, "quickstart")  # a second run re-seeds nothing
    assert code == 0
    assert "seed demo environment: 0 change(s)" in out  # the erased subject stays erased


def test_status_json(url_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "migrate", "status", "--json")
    doc = json.loads(out)
    assert code == 0
    assert {"core", "commerce", "analytics", "community"} == {d["domain"] for d in doc["domains"]}
    assert all(d["pending"] == 0 for d in doc["domains"])


def test_check_exit_1_on_problems(url_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate", "check")[0] == 0
    assert run(capsys, "migrate", "down", "--domain", "community")[0] == 0
    code, out, _ = run(capsys, "migrate", "check", "--json")
    assert code == 1
    assert [f["kind"] for f in json.loads(out)["findings"]] == ["pending"]


def test_doctor_fails_on_pending(url_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "migrate", "down", "--domain", "analytics")
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "FAIL migrations analytics: 1 pending" in out


@pytest.mark.parametrize(
    "argv",
    [
        ("migrate", "up", "--domain", "nope"),
        ("migrate", "up", "--to", "nope_0001"),
        ("migrate", "down", "--domain", "core", "--to", "base"),
        ("migrate", "down", "--domain", "core", "--to", "zzz"),
        ("docs", "erd", "--format", "png"),
        ("docs", "erd", "--domain", "nope"),
        ("migrate", "history", "--domain", "nope"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    url_env: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    before = (schema_snapshot(url_env), versions(url_env))
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("govern: error: ")
    assert "Traceback" not in err
    assert before == (schema_snapshot(url_env), versions(url_env))


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        (
            {"GOVERN_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nothing"},
            "cannot use database",
        ),
        ({"GOVERN_DATABASE_URL": "postgress://x/y"}, "GOVERN_DATABASE_URL uses driver"),
        ({"GOVERN_DATABASE_URL": "sqlite:////nonexistent-dir/x.db"}, "cannot use database"),
        ({"GOVERN_KEK": "bad"}, "GOVERN_KEK must be base64"),
        ({"GOVERN_SURPRISE": "1"}, "unknown setting GOVERN_SURPRISE"),
    ],
)
def test_bad_environment_exit_2(
    govern_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    needle: str,
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, out, err = run(capsys, "migrate", "up")
    assert (code, out) == (2, "")
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_usage_errors_exit_2_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["migrate", "sideways"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1


def test_traceback_flag_shows_one(govern_env: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "govern", "migrate", "up", "--domain", "nope", "--traceback"],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "Traceback" in out.stderr


def test_sql_does_not_touch_the_database(
    govern_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "migrate", "sql")
    assert code == 0
    assert "CREATE TABLE subjects" in out
    assert not (govern_env / "govern.db").exists()


def test_history_marks_applied(url_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "migrate", "history", "--domain", "core")
    assert code == 0
    assert out.startswith("* core")


def test_config_show_hides_secrets(
    govern_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOVERN_DATABASE_URL", "postgresql://u:hunter2hunter2@h/db")
    code, out, _ = run(capsys, "config", "show", "--json")
    assert code == 0
    assert "hunter2hunter2" not in out
    assert "***" in json.loads(out)["database_url"]


def test_generate_kek_is_valid(govern_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from govern.config import load_settings

    code, out, _ = run(capsys, "keys", "generate-kek")
    assert code == 0
    assert len(load_settings({"GOVERN_KEK": out.strip()}).kek_bytes()) == 32


def test_hold_cli_round_trip(url_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    import uuid

    from govern.db import create_engine, transaction
    from govern.domains.core import Subject
    from govern.keys import bind_keyring
    from govern.testing import memory_keyring

    engine = create_engine(url_env)
    bind_keyring(engine, memory_keyring())
    with transaction(engine) as s:
        subject = Subject(external_ref="ext-1")
        s.add(subject)
    engine.dispose()
    code, out, _ = run(
        capsys,
        "hold",
        "add",
        "--subject",
        str(subject.id),
        "--reason",
        "claim",
        "--by",
        "counsel",
        "--json",
    )
    assert code == 0
    hold_id = json.loads(out)["id"]
    assert [hold_id] == [
        h["id"] for h in json.loads(run(capsys, "hold", "list", "--json")[1])["holds"]
    ]
    assert run(capsys, "hold", "release", hold_id, "--by", "counsel")[0] == 0
    assert run(capsys, "hold", "release", hold_id, "--by", "counsel")[0] == 2
    assert (
        run(capsys, "hold", "add", "--subject", "not-a-uuid", "--reason", "r", "--by", "x")[0] == 2
    )
    assert (
        run(capsys, "hold", "add", "--subject", str(uuid.uuid4()), "--reason", "r", "--by", "x")[0]
        == 2
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("dsr", "list"),
        ("consent", "check", "--subject", "subject-1", "--purpose", "marketing"),
        ("hold", "list"),
        ("keys", "list"),
        ("retention", "runs"),
    ],
)
def test_unmigrated_database_gets_one_line_with_the_hint(
    govern_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    empty_url: str,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
) -> None:
    monkeypatch.setenv("GOVERN_DATABASE_URL", empty_url)
    before = schema_snapshot(empty_url)
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "is it migrated? `govern migrate up`" in err
    assert schema_snapshot(empty_url) == before
