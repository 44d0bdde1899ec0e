"""``govern cdc``: exit codes, JSON output, bad input refused with the database unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from govern.cli import main
from govern.db import create_engine, transaction
from govern.events import EventSink, OutboxEvent, emit


@pytest.fixture
def cdc_env(migrated_url: str, govern_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sinks = govern_env / "sinks.toml"
    sinks.write_text(f'[sinks.files]\nkind = "jsonl"\ndirectory = "{govern_env / "out"}"\n')
    monkeypatch.setenv("GOVERN_DATABASE_URL", migrated_url)
    monkeypatch.setenv("GOVERN_SINKS_FILE", str(sinks))
    engine = create_engine(migrated_url)
    with transaction(engine) as s:
        for i in range(4):
            emit(s, type="govern.consent.given", aggregate_type="subject", aggregate_id=i % 2)
    engine.dispose()
    return govern_env


def _sink_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with transaction(engine) as s:
            return int(s.execute(select(func.count()).select_from(EventSink)).scalar_one())
    finally:
        engine.dispose()


def test_relay_status_replay(cdc_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cdc", "relay", "--once", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sinks"][0]["delivered"] == 4
    assert main(["cdc", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert (st["outbox_last_id"], st["sinks"][0]["position"], st["sinks"][0]["backlog"]) == (
        4,
        4,
        0,
    )
    assert main(["cdc", "replay", "--sink", "files", "--from", "2"]) == 0
    assert "position 4 -> 1" in capsys.readouterr().out
    assert main(["cdc", "status"]) == 0
    assert "files (jsonl): position 1, backlog 3" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["cdc", "relay", "--sink", "nope"],
        ["cdc", "replay", "--sink", "nope", "--from", "1"],
        ["cdc", "replay", "--sink", "files", "--from", "9"],
        ["cdc", "relay", "--batch-size", "0"],
    ],
)
def test_bad_input_exits_2_and_changes_nothing(
    cdc_env: Path, migrated_url: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("govern: error: ")
    assert err.count("\n") == 1
    assert _sink_rows(migrated_url) == 0
    assert not (cdc_env / "out").exists()


def test_malformed_sinks_file_exits_2(cdc_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cdc_env / "sinks.toml").write_text(
        '[sinks.x]\nkind = "webhook"\nurl = "http://h"\nsecret = "tiny"\n'
    )
    assert main(["cdc", "status"]) == 2
    err = capsys.readouterr().err
    assert "GOVERN_SINKS_FILE" in err
    assert "tiny" not in err


def test_down_sink_exits_1_and_reports_backlog(
    cdc_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cdc_env / "sinks.toml").write_text(
        '[sinks.hook]\nkind = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
        'secret = "0123456789abcdef0"\nmax_attempts = 1\n'
    )
    assert main(["cdc", "relay", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["sinks"][0]["backlog"], report["sinks"][0]["position"]) == (4, 0)
    assert main(["doctor"]) == 1
    assert "FAIL event sink hook" in capsys.readouterr().out


def test_outbox_untouched_by_status(cdc_env: Path, migrated_url: str) -> None:
    assert main(["cdc", "status"]) == 0
    engine = create_engine(migrated_url)
    with transaction(engine) as s:
        assert s.execute(select(func.count()).select_from(OutboxEvent)).scalar_one() == 4
    engine.dispose()
