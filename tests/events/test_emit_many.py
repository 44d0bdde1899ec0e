"""emit_many: one statement for a batch, the same CloudEvents as emit, gap-free sequences."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine

from govern.db import transaction
from govern.errors import InvalidEventError
from govern.events import HookRegistry, OutboxEvent, emit, emit_many
from tests.events.conftest import parse_cloudevent


def _rows(engine: Engine) -> list[OutboxEvent]:
    with transaction(engine) as s:
        return list(s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def _comparable(payload: str) -> dict[str, Any]:
    ce = json.loads(payload)
    return {k: v for k, v in ce.items() if k not in ("id", "time")}


def test_emit_many_writes_what_emit_writes(engine: Engine) -> None:
    sid = uuid.uuid4()
    spec: list[dict[str, Any]] = [
        {
            "type": "govern.consent.given",
            "aggregate_type": "consent.subject",
            "aggregate_id": "s-1",
            "data": {"purpose": "marketing", "n": 1, "x": None, "ok": True, "é": "ü"},
        },
        {
            "type": "govern.consent.withdrawn",
            "aggregate_type": "subject",
            "aggregate_id": sid,
            "data": {"categories": ["user.contact.email"]},
            "subject": str(sid),
            "source": "/shop",
        },
        {"type": "govern.dsr.completed", "aggregate_type": "dsr", "aggregate_id": 7},
    ]
    with transaction(engine) as s:
        for item in spec:
            emit(s, **item)
    with transaction(engine) as s:
        assert emit_many(s, spec) == 3
    rows = _rows(engine)
    single, many = rows[:3], rows[3:]
    for a, b in zip(single, many, strict=True):
        ca, cb = parse_cloudevent(a.payload), parse_cloudevent(b.payload)
        assert _comparable(a.payload) | {"sequence": None} == _comparable(b.payload) | {
            "sequence": None
        }
        assert ca.get_data() == cb.get_data()
        assert cb.get_id() == str(b.id)
        assert cb.get_extension("sequence") == str(b.sequence)
        assert cb.get_time().utcoffset().total_seconds() == 0
        assert (a.aggregatetype, a.aggregateid, a.type) == (b.aggregatetype, b.aggregateid, b.type)
        assert b.sequence == a.sequence + 1
    assert parse_cloudevent(many[1].payload).get_subject() == str(sid)
    assert parse_cloudevent(many[1].payload).get_source() == "/shop"
    assert parse_cloudevent(many[0].payload).get_subject() is None


def test_emit_many_numbers_each_aggregate_in_order(engine: Engine) -> None:
    with transaction(engine) as s:
        emit(s, type="govern.consent.given", aggregate_type="consent.subject", aggregate_id="a")
    order = ["a", "b", "a", "c", "b", "a"]
    with transaction(engine) as s:
        emit_many(
            s,
            [
                {"type": "govern.consent.given", "aggregate_type": "consent.subject",
                 "aggregate_id": a, "data": {"i": i}}
                for i, a in enumerate(order)
            ],
        )  # fmt: skip
    rows = _rows(engine)[1:]
    assert [r.aggregateid for r in rows] == order  # ids follow the input order
    assert [json.loads(r.payload)["data"]["i"] for r in rows] == list(range(len(order)))
    assert [r.sequence for r in rows] == [2, 1, 3, 1, 2, 4]
    assert [r.id for r in rows] == sorted(r.id for r in rows)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(st.sampled_from("abcd"), max_size=8), min_size=1, max_size=4))
def test_sequences_stay_gap_free(engine: Engine, batches: list[list[str]]) -> None:
    with transaction(engine) as s:
        before = {r.aggregateid: r.sequence for r in s.scalars(select(OutboxEvent))}
        base = dict.fromkeys("abcd", 0)
        for r in s.scalars(select(OutboxEvent).where(OutboxEvent.aggregatetype == "hyp")):
            base[r.aggregateid] = max(base[r.aggregateid], r.sequence)
    del before
    with transaction(engine) as s:
        for batch in batches:
            emit_many(
                s,
                [{"type": "govern.x.y", "aggregate_type": "hyp", "aggregate_id": a} for a in batch],
            )
    with transaction(engine) as s:
        for a in "abcd":
            seqs = list(
                s.scalars(
                    select(OutboxEvent.sequence)
                    .where(OutboxEvent.aggregatetype == "hyp", OutboxEvent.aggregateid == a)
                    .order_by(OutboxEvent.id)
                )
            )
            assert list(range(1, len(seqs) + 1)) == seqs
            assert sum(b.count(a) for b in batches) == len(seqs) - base[a]


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "consent.given", "aggregate_type": "x", "aggregate_id": 1},
        {"type": "govern.a.b", "aggregate_type": "X Y", "aggregate_id": 1},
        {"type": "govern.a.b", "aggregate_type": "x", "aggregate_id": ""},
        {"type": "govern.a.b", "aggregate_type": "x", "aggregate_id": 1, "data": {"t": object()}},
        {"type": "govern.a.b", "aggregate_type": "x", "aggregate_id": 1, "colour": "red"},
        {"type": "govern.a.b", "aggregate_id": 1},
        {"type": "govern.a.b", "aggregate_type": "x", "aggregate_id": 1, "subject": ""},
    ],
)
def test_a_bad_item_writes_nothing(engine: Engine, bad: dict[str, Any]) -> None:
    good = {"type": "govern.a.b", "aggregate_type": "x", "aggregate_id": 1}
    with transaction(engine) as s, pytest.raises(InvalidEventError):
        emit_many(s, [good, bad])
    assert _rows(engine) == []


def test_empty_batch_writes_nothing(engine: Engine) -> None:
    with transaction(engine) as s:
        assert emit_many(s, []) == 0
    assert _rows(engine) == []


def test_hooks_see_the_batch_after_commit(engine: Engine) -> None:
    seen: list[tuple[int, int]] = []
    hooks = HookRegistry()
    hooks.register("govern.consent.*", lambda e: seen.append((e.id, e.sequence)))
    with transaction(engine) as s:
        hooks.attach(s)
        emit_many(
            s,
            [
                {"type": "govern.consent.given", "aggregate_type": "c", "aggregate_id": "z"}
                for _ in range(3)
            ],
        )
        assert seen == []
    assert [r.sequence for r in _rows(engine)] == [q for _, q in seen]
    assert [r.id for r in _rows(engine)] == [i for i, _ in seen]


@pytest.mark.postgres
def test_emit_many_on_postgres_orders_like_emit_and_waits_for_a_concurrent_writer(
    databases: Any,
) -> None:
    """Rows carry the writer's txid (the relay's order), and a batch touching an aggregate
    that another open transaction is appending to waits, then numbers after it."""
    import threading

    from sqlalchemy import select

    from govern.db import create_engine, transaction
    from govern.events import emit, emit_many
    from govern.events.models import OutboxEvent

    engine = create_engine(databases.migrated("postgresql"))
    try:
        first = transaction(engine)
        s1 = first.__enter__()
        emit(s1, type="govern.test.one", aggregate_type="t", aggregate_id="x")
        done: list[int] = []

        def batch() -> None:
            with transaction(engine) as s2:
                done.append(
                    emit_many(
                        s2,
                        [
                            {"type": "govern.test.two", "aggregate_type": "t", "aggregate_id": "x"},
                            {"type": "govern.test.two", "aggregate_type": "t", "aggregate_id": "y"},
                            {
                                "type": "govern.test.three",
                                "aggregate_type": "t",
                                "aggregate_id": "x",
                            },
                        ],
                    )
                )

        worker = threading.Thread(target=batch)
        worker.start()
        worker.join(1.0)
        assert worker.is_alive(), "the batch must wait for the open writer of aggregate x"
        first.__exit__(None, None, None)
        worker.join(30)
        assert done == [3]
        with transaction(engine) as s:
            rows = s.execute(
                select(
                    OutboxEvent.aggregateid,
                    OutboxEvent.sequence,
                    OutboxEvent.type,
                    OutboxEvent.txid,
                ).order_by(OutboxEvent.txid, OutboxEvent.id)
            ).all()
        assert [(r[0], r[1], r[2]) for r in rows] == [
            ("x", 1, "govern.test.one"),
            ("x", 2, "govern.test.two"),
            ("y", 1, "govern.test.two"),
            ("x", 3, "govern.test.three"),
        ]
        assert all(r[3] > 0 for r in rows)
    finally:
        engine.dispose()


def test_ids_never_reuse_those_of_pruned_events(engine: Engine) -> None:
    one = {"type": "govern.a.b", "aggregate_type": "x", "aggregate_id": "k"}
    with transaction(engine) as s:
        emit_many(s, [one, one, one])
    top = max(r.id for r in _rows(engine))
    with transaction(engine) as s:
        s.execute(OutboxEvent.__table__.delete())
    with transaction(engine) as s:
        emit_many(s, [one, {**one, "aggregate_id": "j"}])
    rows = _rows(engine)
    assert [r.id for r in rows] == [top + 1, top + 2]
    assert [json.loads(r.payload)["id"] for r in rows] == [str(top + 1), str(top + 2)]
    # The sequence continues from the outbox's last event of the aggregate still there.
    assert [r.sequence for r in rows] == [1, 1]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_concurrent_batches_in_plain_transactions_stay_gap_free(
    migrated_url: str, engine: Engine
) -> None:
    """SQLite writers that did not ask for the write lock up front (plain ``transaction``):
    the batch takes it before reading the ids and sequences it continues from."""
    import threading

    from govern.db import create_engine

    errors: list[BaseException] = []

    def writer(n: int) -> None:
        eng = create_engine(migrated_url)
        try:
            for i in range(15):
                with transaction(eng) as s:
                    emit_many(
                        s,
                        [{"type": "govern.t.step", "aggregate_type": "t",
                          "aggregate_id": f"agg{(n + j) % 3}", "data": {"n": n, "i": i}}
                         for j in range(4)],
                    )  # fmt: skip
        except BaseException as exc:
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = _rows(engine)
    assert len(rows) == 4 * 15 * 4
    per: dict[str, list[int]] = {}
    for r in rows:
        per.setdefault(r.aggregateid, []).append(r.sequence)
        ce = json.loads(r.payload)
        assert (ce["id"], ce["sequence"]) == (str(r.id), str(r.sequence))
    for seqs in per.values():
        assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.parametrize(
    "bad",
    [
        ("consent.given", "x", "1", None, "/govern", "{}"),
        ("govern.a.b", "X Y", "1", None, "/govern", "{}"),
        ("govern.a.b", "x", "", None, "/govern", "{}"),
        ("govern.a.b", "x", 7, None, "/govern", "{}"),
        ("govern.a.b", "x", "1", "", "/govern", "{}"),
        ("govern.a.b", "x", "1", None, "", "{}"),
        ("govern.a.b", "x", "1", None, "/govern", "[1]"),
        ("govern.a.b", "x", "1", None, "/govern", None),
    ],
)
def test_emit_rows_refuses_a_malformed_row_and_writes_nothing(
    engine: Engine, bad: tuple[Any, ...]
) -> None:
    from govern.events import emit_rows

    good = ("govern.a.b", "x", "1", None, "/govern", '{"n":1}')
    with transaction(engine) as s, pytest.raises(InvalidEventError):
        emit_rows(s, [good, bad])  # type: ignore[list-item]
    assert _rows(engine) == []
    with transaction(engine) as s:
        assert emit_rows(s, [good, good]) == 2
    assert [json.loads(r.payload)["data"] for r in _rows(engine)] == [{"n": 1}, {"n": 1}]
    assert [r.sequence for r in _rows(engine)] == [1, 2]
