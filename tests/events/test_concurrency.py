"""PostgreSQL: event writers run in parallel, the relay never skips an event that commits late."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from govern.db import create_engine, transaction
from govern.events import emit
from govern.events.relay import relay
from govern.events.sinks import sink_config
from tests.events.conftest import parse_cloudevent

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("backend", ["postgresql"], indirect=True),
]


def _until(pred: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def _emit_one(url: str, aggregate: str, done: object) -> None:
    eng = create_engine(url)
    try:
        with transaction(eng) as s:
            emit(s, type="govern.test.step", aggregate_type="t", aggregate_id=aggregate)
        done.set()  # type: ignore[attr-defined]
    finally:
        eng.dispose()


def _lock_waiters(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _files(directory: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for f in sorted(directory.glob("date=*/events.jsonl"))
        for line in f.read_text().splitlines()
    ]


def test_writers_of_different_aggregates_do_not_wait_for_each_other(
    migrated_url: str, engine: Engine
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with transaction(engine) as a:
        emit(a, type="govern.test.step", aggregate_type="t", aggregate_id="a")
        # A stays open while B, another process, emits for another aggregate and commits.
        done = ctx.Event()
        b = ctx.Process(target=_emit_one, args=(migrated_url, "b", done))
        b.start()
        finished = done.wait(60)  # with one global lock B would wait for A's commit
        b.join(60)
        assert finished
        assert b.exitcode == 0
        with engine.connect() as other:
            committed = other.execute(
                text("SELECT aggregateid, sequence FROM event_outbox ORDER BY id")
            ).all()
        assert [tuple(r) for r in committed] == [("b", 1)]  # B committed, A still open
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT aggregateid, sequence FROM event_outbox ORDER BY id"))
        assert sorted(tuple(r) for r in rows) == [("a", 1), ("b", 1)]


def test_writers_of_one_aggregate_queue_and_keep_the_sequence(
    migrated_url: str, engine: Engine
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with transaction(engine) as a:
        emit(a, type="govern.test.step", aggregate_type="t", aggregate_id="x")
        done = ctx.Event()
        b = ctx.Process(target=_emit_one, args=(migrated_url, "x", done))
        b.start()
        # B waits on A's uncommitted sequence 1 instead of taking it too.
        _until(lambda: _lock_waiters(engine) == 1, "the second writer waits for the first")
        assert not done.is_set()
    b.join(60)
    assert b.exitcode == 0
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT aggregateid, sequence FROM event_outbox ORDER BY id"))
        assert [tuple(r) for r in rows] == [("x", 1), ("x", 2)]


def test_relay_waits_for_a_long_transaction_instead_of_skipping_it(
    engine: Engine, tmp_path: Path
) -> None:
    sinks = {"files": sink_config({"kind": "jsonl", "directory": str(tmp_path)})}
    with transaction(engine) as older, transaction(engine) as long:
        # `older` gets its transaction id first; `long` emits first (the lower outbox id)
        # and stays open while `older` emits and commits.
        older.execute(text("SELECT pg_current_xact_id()"))
        first = emit(long, type="govern.test.step", aggregate_type="t", aggregate_id="l")
        second = emit(older, type="govern.test.step", aggregate_type="t", aggregate_id="o")
        assert first.id < second.id
        older.commit()
        younger_id = None
        with transaction(engine) as younger:  # starts (and commits) while `long` is open
            younger_id = emit(
                younger, type="govern.test.step", aggregate_type="t", aggregate_id="y"
            ).id
        report = relay(engine, sinks)
        # `older`'s event is final and goes; `long`'s cannot yet, so neither may the
        # younger one (it would let the position pass `long`'s event).
        assert [int(str(e["id"])) for e in _files(tmp_path)] == [second.id]
        assert report.sinks[0].backlog == 1  # the younger event, visible but held back
    assert relay(engine, sinks).sinks[0].delivered == 2
    delivered = [int(str(e["id"])) for e in _files(tmp_path)]
    assert delivered == [second.id, first.id, younger_id]  # each once, none skipped
    assert relay(engine, sinks).sinks[0].backlog == 0


def _writer(url: str, seed: int, txns: int) -> None:
    rng = random.Random(seed)  # noqa: S311  (interleavings, not crypto)
    eng = create_engine(url)
    try:
        for _ in range(txns):
            with transaction(eng) as s:
                # one order for all writers: opposite orders could deadlock (see docs)
                for agg in sorted(rng.sample(["p", "q", "r", "s", "t"], rng.randint(1, 3))):
                    emit(s, type="govern.test.step", aggregate_type="t", aggregate_id=agg)
                    time.sleep(rng.uniform(0, 0.005))
    finally:
        eng.dispose()


def test_relay_running_beside_concurrent_writers_delivers_all_in_aggregate_order(
    migrated_url: str, engine: Engine, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    sinks = {"files": sink_config({"kind": "jsonl", "directory": str(tmp_path)})}
    writers = [ctx.Process(target=_writer, args=(migrated_url, i, 30)) for i in range(4)]
    for w in writers:
        w.start()
    stop = threading.Event()

    def relay_loop() -> None:
        while not stop.is_set():
            relay(engine, sinks, batch_size=7)

    loop = threading.Thread(target=relay_loop)
    loop.start()
    for w in writers:
        w.join(180)
    stop.set()
    loop.join(60)
    assert [w.exitcode for w in writers] == [0, 0, 0, 0]
    relay(engine, sinks)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM event_outbox")).scalar_one()
    seen: set[int] = set()
    per: dict[str, list[int]] = {}
    for line in _files(tmp_path):
        ce = parse_cloudevent(json.dumps(line))
        eid = int(ce.get_id())
        assert eid not in seen  # one relay at a time, fenced positions: no re-sends here
        seen.add(eid)
        per.setdefault(ce.get_extension("partitionkey"), []).append(
            int(ce.get_extension("sequence"))
        )
    assert len(seen) == total
    for seqs in per.values():
        assert seqs == list(range(1, len(seqs) + 1))
