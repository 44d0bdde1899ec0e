"""Several real worker processes drain one queue: every request is processed exactly once."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from govern import dsr
from govern.db import transaction
from govern.domains.core import AuditLog
from govern.dsr import WorkCalendar
from govern.dsr.models import DsrRequest, DsrTransition
from govern.events import OutboxEvent
from govern.types.utc import utcnow
from tests.helpers import commit_between

from .conftest import approved_request, keyed_engine, populate_subject

TYPES = ("erasure", "restriction", "access", "objection")


def _queue(engine: Engine, cal: WorkCalendar, n: int) -> list[uuid.UUID]:
    ids = []
    with transaction(engine) as s:
        for i in range(n):
            sid = populate_subject(s, events=2)
            out = dsr.submit(
                s,
                type=TYPES[i % len(TYPES)],
                identifiers={"subject_id": str(sid)},
                calendar=cal,
                actor="portal",
                verified=True,
            )
            dsr.approve(s, out.request.id, actor="dpo")
            ids.append(out.request.id)
    return ids


def _run_workers(url: str, kek: str, out: Path, count: int) -> list[dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERN_")}
    env |= {"GOVERN_DATABASE_URL": url, "GOVERN_DSR_EXPORT_DIR": str(out), "GOVERN_KEK": kek}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "govern",
                "dsr",
                "work",
                "--once",
                "--worker",
                f"w{i}",
                "--json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr
        results.append(json.loads(stdout))
    return results


def _check_exactly_once(
    engine: Engine, ids: list[uuid.UUID], results: list[dict[str, object]]
) -> None:
    reported = [p["request_id"] for r in results for p in r["processed"]]  # type: ignore[attr-defined]
    assert sorted(str(i) for i in ids) == sorted(reported)  # each by exactly one worker
    with transaction(engine) as s:
        states = Counter(s.scalars(select(DsrRequest.state)))
        moves = Counter(
            (t.request_id, t.to_state)
            for t in s.scalars(
                select(DsrTransition).where(
                    DsrTransition.to_state.in_(("in_progress", "completed"))
                )
            )
        )
        steps = Counter(
            (d["seq"], a)
            for a, d in s.execute(
                select(AuditLog.target_id, AuditLog.details).where(AuditLog.action == "dsr.step")
            )
        )
    assert {"completed": len(ids)} == dict(states)
    assert set(moves.values()) == {1}
    assert len(moves) == 2 * len(ids)
    assert set(steps.values()) == {1}


@pytest.mark.postgres
def test_four_workers_on_postgres(
    databases: object, kek: str, calendar: WorkCalendar, tmp_path: Path
) -> None:
    url = databases.migrated("postgresql")  # type: ignore[attr-defined]
    engine = keyed_engine(url, kek)
    try:
        ids = _queue(engine, calendar, 240)
        results = _run_workers(url, kek, tmp_path / "exports", 4)
        _check_exactly_once(engine, ids, results)
        assert len(list((tmp_path / "exports").glob("*.zip"))) == 60
    finally:
        engine.dispose()


def test_two_workers_on_sqlite(
    databases: object, kek: str, calendar: WorkCalendar, tmp_path: Path
) -> None:
    url = databases.migrated("sqlite")  # type: ignore[attr-defined]
    engine = keyed_engine(url, kek)
    try:
        ids = _queue(engine, calendar, 40)
        results = _run_workers(url, kek, tmp_path / "exports", 2)
        _check_exactly_once(engine, ids, results)
    finally:
        engine.dispose()


def test_claims_take_the_most_urgent_claimable_request_first(
    engine: Engine, calendar: WorkCalendar
) -> None:
    """Approved requests and in-progress ones whose lease ran out (or that have none) are
    claimed by due date (ties by id); a live lease, or any other state, is never claimed."""
    from govern.dsr.workers import claim_next

    now = dt.datetime.now(dt.UTC)
    due = {
        "late": 9,
        "soon": 2,
        "tie_a": 5,
        "tie_b": 5,
        "abandoned": 1,
        "unleased": 3,
        "leased": 0,
        "done": 0,
    }
    ids: dict[str, uuid.UUID] = {}
    with transaction(engine) as s:
        sid = populate_subject(s, events=1)
        for name in due:
            ids[name] = approved_request(s, calendar, sid, "restriction")
        for name, days in due.items():
            req = s.get(DsrRequest, ids[name])
            assert req is not None
            req.due_at = now + dt.timedelta(days=days)
        s.get(DsrRequest, ids["done"]).state = "completed"  # type: ignore[union-attr]
        for name, lease in (("abandoned", -1), ("unleased", None), ("leased", 60)):
            req = s.get(DsrRequest, ids[name])
            assert req is not None
            req.state, req.claimed_by = "in_progress", "gone"
            req.lease_expires_at = None if lease is None else now + dt.timedelta(minutes=lease)
    ties = sorted(("tie_a", "tie_b"), key=lambda n: ids[n])
    expected = ["abandoned", "soon", "unleased", *ties, "late"]
    got = [claim_next(engine, worker=f"w{i}") for i in range(len(expected) + 1)]
    assert got == [*(ids[n] for n in expected), None]
    with transaction(engine) as s:
        leased = s.get(DsrRequest, ids["leased"])
        assert leased is not None
        assert leased.claimed_by == "gone"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_deadline_sweep_holds_the_write_lock_against_other_workers(
    engine: Engine, calendar: WorkCalendar, tmp_path: Path
) -> None:
    """The sweep reads open requests, then marks them notified. Another process that writes
    between the two must wait: a deferred sweep would fail its write ("database is locked")
    and crash the worker."""
    with transaction(engine) as s:
        soon = dsr.submit(
            s,
            type="access",
            identifiers={"email": "b@example.com"},
            calendar=calendar,
            actor="portal",
            received_at=utcnow() - dt.timedelta(days=27),
            verified=True,
        ).request.id

    def sweep_read(sql: str) -> bool:
        return sql.lstrip().upper().startswith("SELECT") and "dsr_requests" in sql

    with commit_between(engine, sweep_read) as other:  # another worker's commit
        dsr.work(engine, export_dir=tmp_path, once=True)
    assert other == ["database is locked"]
    with transaction(engine) as s:
        notices = s.scalars(
            select(OutboxEvent.type).where(OutboxEvent.aggregateid == str(soon))
        ).all()
    assert "govern.dsr.due_soon" in notices
