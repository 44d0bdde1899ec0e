"""``govern retention ...`` end to end: JSON, exit statuses, one-line errors, nothing changed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from govern.cli import main
from tests.helpers import keyed_engine
from tests.retention.helpers import raw, seed

POLICY = """
[[policy]]
name = "events"
table = "analytics_events"
timestamp_column = "occurred_at"
period = "P13M"
owner = "team-data"
purpose = "tests"
batch_size = 5
{extra}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def url_env(govern_env: Path, monkeypatch: pytest.MonkeyPatch, migrated_url: str) -> str:
    monkeypatch.setenv("GOVERN_DATABASE_URL", migrated_url)
    engine = keyed_engine(migrated_url)
    seed(engine, 40, random.Random(9))
    engine.dispose()
    return migrated_url


def _raw(url: str, table: str) -> list[tuple[object, ...]]:
    engine = keyed_engine(url)
    try:
        return raw(engine, table)
    finally:
        engine.dispose()


def _file(tmp: Path, extra: str = "") -> str:
    f = tmp / f"p{abs(hash(extra))}.toml"
    f.write_text(POLICY.format(extra=extra))
    return str(f)


def test_plan_approve_run_rollback(
    url_env: str, govern_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _file(govern_env)
    before = _raw(url_env, "analytics_events")
    code, out, _ = run(capsys, "retention", "plan", "--policies", f, "--json")
    planned = json.loads(out)["policies"][0]
    assert (code, planned["approved"]) == (0, False)
    code, _, err = run(capsys, "retention", "run", "--policy", "events", "--policies", f)
    assert code == 2
    assert err.count("\n") == 1
    assert "not approved" in err
    assert run(capsys, "retention", "approve", "events", "--by", "dpo", "--policies", f)[0] == 0
    code, out, _ = run(capsys, "retention", "run", "--policies", f, "--json")
    done = json.loads(out)["runs"][0]
    assert (code, done["status"], done["processed_rows"]) == (0, "completed", planned["rows"])
    code, out, _ = run(capsys, "retention", "docs", "--policies", f)
    assert "| events |" in out
    assert "approved by dpo" in out
    assert run(capsys, "retention", "rollback", done["id"], "--by", "ops")[0] == 0
    assert _raw(url_env, "analytics_events") == before
    code, _, err = run(capsys, "retention", "rollback", done["id"], "--by", "ops")
    assert code == 2
    assert "rolled_back" in err


def test_breaker_exits_1_and_alerts(
    url_env: str,
    govern_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = _file(govern_env, "max_rows_per_run = 1")
    run(capsys, "retention", "approve", "events", "--by", "dpo", "--policies", f)
    code, out, _ = run(capsys, "retention", "run", "--policies", f)
    assert code == 1
    assert "aborted" in out
    code, out, _ = run(capsys, "retention", "alerts", "--json")
    assert [a["kind"] for a in json.loads(out)["alerts"]] == ["circuit_breaker"]
    monkeypatch.setenv("GOVERN_RETENTION_POLICIES", f)
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "FAIL retention last runs: last run failed or aborted: events" in out


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("filter = \"type = 'x' OR 1=1\"", "policy 'events' field filter: "),
        ('columns = ["id"]\naction = "anonymise"', "policy 'events' field columns: "),
    ],
)
def test_bad_policy_file_exit_2_nothing_changed(
    url_env: str, govern_env: Path, capsys: pytest.CaptureFixture[str], extra: str, words: str
) -> None:
    f = _file(govern_env, extra)
    before = _raw(url_env, "retention_runs")
    code, out, err = run(capsys, "retention", "plan", "--policies", f)
    assert (code, out) == (2, "")
    assert err.startswith("govern: error: " + words)
    assert err.count("\n") == 1
    assert _raw(url_env, "retention_runs") == before
