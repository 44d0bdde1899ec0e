"""``govern dsr ...`` end to end through the CLI, with --json; bad input exits 2, unchanged."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from govern.cli import main
from govern.db import create_engine, transaction
from govern.dsr.models import DsrRequest, DsrStep
from govern.types.utc import utcnow
from tests.dsr.conftest import keyed_engine, populate_subject


@pytest.fixture
def env(migrated_url: str, govern_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GOVERN_DATABASE_URL", migrated_url)
    monkeypatch.setenv("GOVERN_DSR_EXPORT_DIR", str(govern_env / "exports"))
    monkeypatch.setenv("GOVERN_DSR_HOLIDAYS", "2026-12-25,2026-12-26")
    monkeypatch.setenv("GOVERN_KEK", base64.b64encode(os.urandom(32)).decode())
    return govern_env


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> dict:  # type: ignore[type-arg]
    assert main([*argv, "--json"]) == code
    out = capsys.readouterr().out
    return json.loads(out)  # type: ignore[no-any-return]


def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        with transaction(engine) as s:
            return int(s.scalar(select(func.count()).select_from(DsrRequest)) or 0)
    finally:
        engine.dispose()


def test_access_request_through_the_cli(
    env: Path, migrated_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = keyed_engine(migrated_url, os.environ["GOVERN_KEK"])
    with transaction(engine) as s:
        populate_subject(s, email="ada@example.com")
    engine.dispose()
    code_file = env / "code.txt"
    sub = _json(
        capsys,
        [
            "dsr",
            "submit",
            "access",
            "--email",
            "ada@example.com",
            "--by",
            "portal",
            "--code-out",
            str(code_file),
        ],
    )
    rid = sub["request"]["id"]
    assert sub["request"]["state"] == "identity_pending"
    assert "verification_code" not in sub
    assert stat.S_IMODE(code_file.stat().st_mode) == 0o600
    code = code_file.read_text().strip()
    assert code not in json.dumps(sub)
    assert main(["dsr", "verify", rid, "--code", "12", "--by", "portal"]) == 2
    assert "wrong verification code (4 attempt(s) left)" in capsys.readouterr().err
    assert (
        _json(capsys, ["dsr", "verify", rid, "--code", code, "--by", "portal"])["state"]
        == "verified"
    )
    _json(capsys, ["dsr", "approve", rid, "--by", "dpo"])
    plan = _json(capsys, ["dsr", "plan", rid])
    assert plan["steps"][-1]["action"] == "package"
    done = _json(capsys, ["dsr", "process", rid])
    assert done["state"] == "completed"
    exp = _json(capsys, ["dsr", "export", rid, "--out", str(env / "mine.zip")])
    assert Path(exp["path"]).is_file()
    shown = _json(capsys, ["dsr", "show", rid])
    assert [t["to_state"] for t in shown["transitions"]] == [
        "received",
        "identity_pending",
        "verified",
        "approved",
        "in_progress",
        "completed",
    ]
    assert "ada@example.com" not in json.dumps(shown)
    rep = _json(capsys, ["dsr", "report"])
    assert rep["completed"] == 1
    assert rep["on_time_rate"] == 1.0
    listed = _json(capsys, ["dsr", "list", "--state", "completed"])
    assert [rid] == [r["id"] for r in listed["requests"]]
    assert main(["dsr", "show", rid]) == 0
    assert "completed" in capsys.readouterr().out


def test_queue_extend_deny_work_and_map(
    env: Path, migrated_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sub = _json(
        capsys,
        ["dsr", "submit", "erasure", "--email", "x@example.com", "--by", "ops", "--verified"],
    )
    rid = sub["request"]["id"]
    ext = _json(capsys, ["dsr", "extend", rid, "--by", "dpo", "--reason", "complex"])
    assert ext["extended"]
    assert main(["dsr", "extend", rid, "--by", "dpo", "--reason", "again"]) == 2
    assert "already extended" in capsys.readouterr().err
    other = _json(
        capsys,
        ["dsr", "submit", "objection", "--email", "y@example.com", "--by", "ops", "--verified"],
    )
    _json(capsys, ["dsr", "deny", other["request"]["id"], "--by", "dpo", "--reason", "duplicate"])
    _json(capsys, ["dsr", "approve", rid, "--by", "dpo"])
    work = _json(capsys, ["dsr", "work", "--once", "--worker", "w1"])
    assert [rid] == [p["request_id"] for p in work["processed"]]
    assert _json(capsys, ["dsr", "list", "--overdue"])["requests"] == []
    assert _json(capsys, ["dsr", "list", "--due-within", "3"])["requests"] == []
    m = _json(capsys, ["dsr", "map"])
    assert any(t["table"] == "invoices" and "17(3)(b)" in t["exception"] for t in m["tables"])
    assert m["unmapped"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dsr", "show", "not-a-uuid"], "REQUEST_ID must be a UUID"),
        (["dsr", "show", "00000000-0000-0000-0000-000000000000"], "unknown request"),
        (
            ["dsr", "submit", "forget-me", "--email", "a@b.io", "--by", "x", "--verified"],
            "unknown request type",
        ),
        (["dsr", "submit", "access", "--email", "a@b.io", "--by", "x"], "--code-out"),
        (
            [
                "dsr",
                "submit",
                "rectification",
                "--email",
                "a@b.io",
                "--by",
                "x",
                "--verified",
                "--correct",
                "subjects.email=nope",
            ],
            "not an email",
        ),
        (["dsr", "list", "--state", "sleeping"], "unknown state"),
        (["dsr", "work", "--once", "--rows-per-transaction", "-1"], "must be 0 or more"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(
    env: Path, migrated_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert _count(migrated_url) == 0


def test_extension_after_the_deadline_is_refused(
    env: Path, migrated_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sub = _json(
        capsys, ["dsr", "submit", "access", "--email", "a@example.com", "--by", "ops", "--verified"]
    )
    engine = keyed_engine(migrated_url, os.environ["GOVERN_KEK"])
    with transaction(engine) as s:
        s.get(DsrRequest, uuid.UUID(sub["request"]["id"])).due_at = utcnow()  # type: ignore[union-attr]
    engine.dispose()
    assert main(["dsr", "extend", sub["request"]["id"], "--by", "dpo", "--reason", "late"]) == 2
    assert "too late" in capsys.readouterr().err


@pytest.fixture
def archive() -> Iterator[str]:
    from govern.datamap.actions import register_manual_location, unregister_manual_location

    register_manual_location(
        "paper_archive",
        description="signed contracts, Berlin office",
        owner="office@example.com",
        rights=("erasure",),
    )
    yield "paper_archive"
    unregister_manual_location("paper_archive")


def _steps_state(url: str, rid: str) -> tuple[str, list[tuple[int, str]]]:
    engine = create_engine(url)
    try:
        with transaction(engine) as s:
            state = s.scalar(select(DsrRequest.state).where(DsrRequest.id == uuid.UUID(rid)))
            steps = s.execute(
                select(DsrStep.seq, DsrStep.status)
                .where(DsrStep.request_id == uuid.UUID(rid))
                .order_by(DsrStep.seq)
            ).all()
            return str(state), [(int(a), str(b)) for a, b in steps]
    finally:
        engine.dispose()


def test_manual_step_confirmed_through_the_cli(
    env: Path, migrated_url: str, capsys: pytest.CaptureFixture[str], archive: str
) -> None:
    engine = keyed_engine(migrated_url, os.environ["GOVERN_KEK"])
    with transaction(engine) as s:
        sid = populate_subject(s)
    engine.dispose()
    sub = _json(
        capsys,
        ["dsr", "submit", "erasure", "--subject", str(sid), "--by", "ops", "--verified"],
    )
    rid = sub["request"]["id"]
    _json(capsys, ["dsr", "approve", rid, "--by", "dpo"])
    plan = _json(capsys, ["dsr", "plan", rid])
    manual = [st for st in plan["steps"] if st["action"] == "manual"]
    assert [st["table"] for st in manual] == [archive]
    seq = manual[0]["seq"]
    m = _json(capsys, ["dsr", "map"])
    assert [(x["name"], x["rights"]) for x in m["manual"]] == [(archive, ["erasure"])]

    assert main(["dsr", "process", rid]) == 0
    out = capsys.readouterr().out
    assert "awaiting_action" in out
    assert f"dsr confirm {rid} --step {seq}" in out
    work = _json(capsys, ["dsr", "work", "--once", "--rows-per-transaction", "0"])
    assert work["processed"] == []
    waiting = _steps_state(migrated_url, rid)
    assert waiting[0] == "awaiting_action"

    # bad input: one line, exit 2, nothing changed
    for argv, message in [
        (["--step", str(seq + 1)], f"awaits manual step {seq}"),
        (["--step", "x"], "invalid int value"),
        (["--step", str(seq), "--by", " "], "needs the name"),
    ]:
        full = ["dsr", "confirm", rid, *argv]
        if "--by" not in argv:
            full += ["--by", "clerk"]
        try:
            code = main(full)
        except SystemExit as exc:  # argparse refuses a malformed --step itself
            code = int(str(exc.code))
        assert code == 2
        err = capsys.readouterr().err
        assert message in err
        assert len(err.strip().splitlines()) == 1
        assert _steps_state(migrated_url, rid) == waiting
    missing = ["dsr", "confirm", str(uuid.uuid4()), "--step", str(seq), "--by", "clerk"]
    assert main(missing) == 2
    assert "unknown request" in capsys.readouterr().err

    confirmed = _json(
        capsys, ["dsr", "confirm", rid, "--step", str(seq), "--by", "clerk", "--note", "done"]
    )
    assert confirmed["state"] == "approved"
    assert main(["dsr", "confirm", rid, "--step", str(seq), "--by", "clerk"]) == 2
    assert "approved: it awaits no manual step" in capsys.readouterr().err
    work = _json(capsys, ["dsr", "work", "--once", "--rows-per-transaction", "0"])
    assert [p["state"] for p in work["processed"]] == ["completed"]
    state, steps = _steps_state(migrated_url, rid)
    assert state == "completed"
    assert {status for _, status in steps} <= {"done", "kept"}
