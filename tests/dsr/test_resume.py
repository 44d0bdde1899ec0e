"""Kill a real worker process at every step, before and after its commit; resume; check
that the result is complete and that no step ran twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from govern import dsr
from govern.db import transaction
from govern.domains import analytics, commerce, core
from govern.dsr import WorkCalendar
from govern.dsr.models import DsrStep, Restriction
from govern.dsr.schemas import ProcessResult
from govern.dsr.workers import DEFAULT_ROWS_PER_TRANSACTION, _Pending, units

from .conftest import approved_request, populate_subject

ROOT = Path(__file__).resolve().parents[2]


def _new_request(engine: Engine, cal: WorkCalendar, type_: str) -> tuple[uuid.UUID, uuid.UUID]:
    with transaction(engine) as s:
        sid = populate_subject(s, events=3)
        return sid, approved_request(s, cal, sid, type_)


def _runnable(engine: Engine, rid: uuid.UUID) -> list[int]:
    """The seqs of the steps that do work (keep steps are checkpointed when planned)."""
    with transaction(engine) as s:
        return [st.seq for st in dsr.plan(s, rid).steps if st.action != "keep"]


def _kill_at(
    url: str,
    kek: str,
    rid: uuid.UUID,
    out: Path,
    seq: int,
    phase: str,
    budget: int = DEFAULT_ROWS_PER_TRANSACTION,
) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERN_")}
    args = [str(rid), str(out), str(seq), phase, str(budget)]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.dsr.victim", url, *args],
        cwd=ROOT,
        env={**env, "GOVERN_KEK": kek},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode


def _groups(engine: Engine, rid: uuid.UUID, budget: int) -> list[list[int]]:
    """The seqs of the runnable steps, cut into the transactions a worker runs them in."""
    with transaction(engine) as s:
        steps = dsr.plan(s, rid).steps
    pending = [_Pending(st.seq, st.seq, st.table, st.action, st.rows) for st in steps]
    return [[p.seq for p in u] for u in units([p for p in pending if p.action != "keep"], budget)]


def _committed_before(groups: list[list[int]], seq: int, phase: str) -> set[int]:
    """What a kill at ``seq`` leaves committed: the earlier transactions, and its own one
    when the kill came after its commit (all of a transaction commits, or none of it)."""
    done: set[int] = set()
    for group in groups:
        if seq in group:
            return done | set(group) if phase == "committed" else done
        done |= set(group)
    raise AssertionError(f"step {seq} is in no transaction")


def resume(
    engine: Engine, rid: uuid.UUID, export_dir: Path, *, finished: bool
) -> ProcessResult | None:
    """Resume a killed worker's request. A kill right after the last transaction's commit
    (``finished``) finds it completed already: that transaction also completes it. A kill
    inside the first transaction undid the claim too: the request is still approved."""
    with transaction(engine) as s:
        state = dsr.show(s, rid).request.state
    if finished:
        assert state == "completed"
    else:
        assert state in ("approved", "in_progress")
    if finished:
        return None
    result = dsr.process_request(engine, rid, export_dir=export_dir, worker="rescuer")
    assert result.state == "completed"
    return result


def package_of(
    engine: Engine, rid: uuid.UUID, export_dir: Path, worker: str = "rescuer"
) -> tuple[dict[str, Any], list[Any], list[str]]:
    """Process ``rid`` to completion; its package's manifest, events file and member names."""
    result = dsr.process_request(engine, rid, export_dir=export_dir, worker=worker)
    assert result.state == "completed"
    assert result.export_path
    with zipfile.ZipFile(result.export_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        events = json.loads(zf.read("data/analytics_events.json"))
        return manifest, events, zf.namelist()


def _step_audits(engine: Engine, rid: uuid.UUID) -> dict[int, int]:
    with transaction(engine) as s:
        rows = s.scalars(
            select(core.AuditLog.details).where(
                core.AuditLog.action == "dsr.step", core.AuditLog.target_id == str(rid)
            )
        ).all()
    seen: dict[int, int] = {}
    for d in rows:
        seen[d["seq"]] = seen.get(d["seq"], 0) + 1
    return seen


def _pending_seqs(engine: Engine, rid: uuid.UUID) -> list[int]:
    with transaction(engine) as s:
        return list(
            s.scalars(
                select(DsrStep.seq)
                .where(DsrStep.request_id == rid, DsrStep.status == "pending")
                .order_by(DsrStep.seq)
            )
        )


@pytest.mark.parametrize("budget", [0, 8, DEFAULT_ROWS_PER_TRANSACTION])
@pytest.mark.parametrize("phase", ["executed", "committed"])
def test_erasure_killed_at_every_step_resumes_exactly_once(
    engine: Engine,
    migrated_url: str,
    kek: str,
    calendar: WorkCalendar,
    export_dir: Path,
    phase: str,
    budget: int,
) -> None:
    """Budget 0: each step with work is its own transaction; 8: a few steps per
    transaction; the default: the whole (small) erasure in one."""
    steps = _runnable(engine, _new_request(engine, calendar, "erasure")[1])
    assert len(steps) > 10
    for seq in steps:
        sid, rid = _new_request(engine, calendar, "erasure")
        groups = _groups(engine, rid, budget)
        assert [x for g in groups for x in g] == steps
        assert _kill_at(migrated_url, kek, rid, export_dir, seq, phase, budget) == -9
        done_before = set(_step_audits(engine, rid))
        assert _committed_before(groups, seq, phase) == done_before
        resume(engine, rid, export_dir, finished=done_before == set(steps))
        assert _pending_seqs(engine, rid) == []
        audits = _step_audits(engine, rid)
        assert set(audits.values()) == {1}, f"a step ran twice after a kill at {seq}/{phase}"
        assert set(audits) == set(steps)
        with transaction(engine) as s:
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(analytics.AnalyticsEvent)
                    .where(analytics.AnalyticsEvent.subject_id == sid)
                )
                == 0
            )
            assert s.get(core.Subject, sid).email is None  # type: ignore[union-attr]
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(commerce.Invoice)
                    .where(commerce.Invoice.subject_id == sid)
                )
                == 1
            )
            restrictions = s.scalar(
                select(func.count()).select_from(Restriction).where(Restriction.subject_id == sid)
            )
            assert restrictions == 1  # the restrict step ran once


@pytest.mark.parametrize("budget", [0, 4, DEFAULT_ROWS_PER_TRANSACTION])
def test_access_killed_at_every_step_gives_a_complete_package(
    engine: Engine,
    migrated_url: str,
    kek: str,
    calendar: WorkCalendar,
    export_dir: Path,
    budget: int,
) -> None:
    """A kill inside a transaction leaves rows in the staging file after the committed
    steps' end; the resuming worker cuts them off, so no table appears twice."""
    steps = _runnable(engine, _new_request(engine, calendar, "access")[1])
    for seq in [*steps[:: max(1, len(steps) // 6)], steps[-1]]:
        _, rid = _new_request(engine, calendar, "access")
        assert _kill_at(migrated_url, kek, rid, export_dir, seq, "executed", budget) == -9
        manifest, events, _ = package_of(engine, rid, export_dir)
        assert len(events) == 3
        assert manifest["tables"] == len(steps) - 1
        assert set(_step_audits(engine, rid).values()) == {1}


def test_kill_in_the_first_transaction_undoes_the_claim(
    engine: Engine, migrated_url: str, kek: str, calendar: WorkCalendar, export_dir: Path
) -> None:
    """The claim, the stored plan and the first transaction's steps commit together: a worker
    killed in them leaves the request approved, with no plan, and any worker takes it at
    once (no lease to wait for)."""
    _, rid = _new_request(engine, calendar, "erasure")
    first = _runnable(engine, rid)[0]
    assert _kill_at(migrated_url, kek, rid, export_dir, first, "executed") == -9
    with transaction(engine) as s:
        assert dsr.show(s, rid).request.state == "approved"
    assert _pending_seqs(engine, rid) == []
    assert _step_audits(engine, rid) == {}
    result = dsr.work(engine, export_dir=export_dir, once=True, worker="next")
    assert [p.state for p in result.processed] == ["completed"]
    assert set(_step_audits(engine, rid).values()) == {1}


def test_access_whose_staged_rows_are_gone_reads_again(
    engine: Engine, migrated_url: str, kek: str, calendar: WorkCalendar, export_dir: Path
) -> None:
    """A worker resuming with an export folder that lacks the committed reads' rows (its own
    folder, a cleaned one) sets those reads back to pending, audited, and reads them again:
    the package is complete, with each table once."""
    _, rid = _new_request(engine, calendar, "access")
    steps = _runnable(engine, rid)
    assert _kill_at(migrated_url, kek, rid, export_dir, steps[3], "committed", 0) == -9
    staged = export_dir / ".staging" / f"{rid}.jsonl"
    assert staged.stat().st_size > 0
    staged.write_bytes(staged.read_bytes()[:-10])  # cut short: the last read's rows are gone
    manifest, events, names = package_of(engine, rid, export_dir)
    assert manifest["tables"] == len(steps) - 1
    assert len(events) == 3
    assert len(names) == len(set(names))
    audits = _step_audits(engine, rid)
    assert {audits[seq] for seq in steps[:4]} == {2}  # read before the kill, and again
    assert {audits[seq] for seq in steps[4:]} == {1}
    with transaction(engine) as s:
        restaged = s.scalar(
            select(func.count())
            .select_from(core.AuditLog)
            .where(core.AuditLog.action == "dsr.restage", core.AuditLog.target_id == str(rid))
        )
    assert restaged == 1
