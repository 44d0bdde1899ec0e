"""Real processes: a run killed at random points resumes exactly; schedulers run a policy once
at a time across processes (PostgreSQL advisory lock, SQLite lease)."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from govern.db import transaction
from govern.events.models import OutboxEvent
from govern.retention import load_policies, plan_policy
from govern.retention.models import QuarantineRow, Run, RunBatch
from tests.helpers import keyed_engine
from tests.retention.helpers import approved, raw, seed

POLICY_TOML = """
[[policy]]
name = "events"
table = "analytics_events"
timestamp_column = "occurred_at"
period = "P13M"
owner = "team-data"
purpose = "tests"
batch_size = {batch}
schedule = "{schedule}"
"""


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERN_")}
    env["GOVERN_DATABASE_URL"] = url
    return env


def _govern(*args: str) -> list[str]:
    return [sys.executable, "-m", "govern", *args]


def _reconciled(url: str, planned: int, before: int) -> None:
    engine = keyed_engine(url)
    try:
        with transaction(engine) as s:
            runs = s.scalars(select(Run)).all()
            # Runs started after the work was done find nothing (0 of 0).
            assert [
                (r.status, r.planned_rows, r.processed_rows) for r in runs if r.planned_rows
            ] == [("completed", planned, planned)]
            assert all(r.status == "completed" for r in runs)
            keys = s.execute(select(QuarantineRow.row_key)).scalars().all()
            assert len(keys) == len(set(keys)) == planned
            assert s.scalar(select(func.sum(RunBatch.rows))) == planned
            tombs = s.scalars(
                select(OutboxEvent.aggregateid).where(OutboxEvent.type == "govern.row.deleted")
            ).all()
            assert sorted(tombs) == sorted(keys)
        assert len(raw(engine, "analytics_events")) == before - planned
    finally:
        engine.dispose()


def test_killed_runs_resume_without_loss_or_repeat(migrated_url: str, tmp_path: Path) -> None:
    engine = keyed_engine(migrated_url)
    # Enough one-row batches that a run outlives its random kill time on a fast machine.
    seed(engine, 3000, random.Random(11))
    f = tmp_path / "policies.toml"
    f.write_text(POLICY_TOML.format(batch=1, schedule="0 3 * * *"))
    policy = load_policies(f).get("events")
    approved(engine, policy)
    with transaction(engine) as s:
        planned = plan_policy(s, policy).rows
    before = len(raw(engine, "analytics_events"))
    engine.dispose()
    rng = random.Random()
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen(
            _govern("retention", "run", "--policies", str(f), "--json"),
            env=_env(migrated_url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    final = subprocess.run(
        _govern("retention", "run", "--policies", str(f)),
        env=_env(migrated_url),
        capture_output=True,
        text=True,
        check=False,
    )
    assert final.returncode == 0, final.stderr
    assert kills > 0
    _reconciled(migrated_url, planned, before)


def test_schedulers_in_many_processes_run_a_policy_once_at_a_time(
    migrated_url: str, tmp_path: Path
) -> None:
    engine = keyed_engine(migrated_url)
    # Few rows: the first run ends early, so later firings fall inside the window.
    seed(engine, 120, random.Random(12))
    f = tmp_path / "policies.toml"
    f.write_text(POLICY_TOML.format(batch=2, schedule="* * * * * *"))
    policy = load_policies(f).get("events")
    approved(engine, policy)
    with transaction(engine) as s:
        planned = plan_policy(s, policy).rows
    before = len(raw(engine, "analytics_events"))
    procs = [
        subprocess.Popen(
            _govern("retention", "schedule", "--policies", str(f), "--for", "14", "--json"),
            env=_env(migrated_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outs]
    try:
        with transaction(engine) as s:
            runs = s.scalars(select(Run).order_by(Run.started_at)).all()
        assert len(runs) >= 2  # fired again after the first run finished
        assert all(r.status == "completed" and r.finished_at for r in runs)
        for a, b in itertools.pairwise(runs):
            assert a.finished_at is not None
            assert a.finished_at <= b.started_at, "two runs of one policy overlapped"
        assert sum(r.processed_rows for r in runs) == planned
        assert len(raw(engine, "analytics_events")) == before - planned
    finally:
        engine.dispose()
