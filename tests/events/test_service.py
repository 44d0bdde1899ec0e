"""emit / emit_tombstones: CloudEvents in the caller's transaction, ordered per aggregate."""

from __future__ import annotations

import json
import multiprocessing
import threading
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine

from govern.db import create_engine, transaction
from govern.domains.core import Subject
from govern.errors import InvalidEventError
from govern.events import OutboxEvent, emit, emit_tombstones, validate_event_type
from tests.events.conftest import parse_cloudevent


def _rows(engine: Engine) -> list[OutboxEvent]:
    with transaction(engine) as s:
        return list(s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def test_emit_writes_a_valid_cloudevent(engine: Engine) -> None:
    sid = uuid.uuid4()
    with transaction(engine) as s:
        first = emit(
            s,
            type="govern.consent.withdrawn",
            aggregate_type="subject",
            aggregate_id=sid,
            data={"purpose": "marketing", "categories": ["user.contact.email"]},
            subject=str(sid),
        )
        second = emit(s, type="govern.consent.given", aggregate_type="subject", aggregate_id=sid)
    rows = _rows(engine)
    assert [r.id for r in rows] == [first.id, second.id]
    assert [(r.aggregatetype, r.aggregateid, r.sequence) for r in rows] == [
        ("subject", str(sid), 1),
        ("subject", str(sid), 2),
    ]
    ce = parse_cloudevent(rows[0].payload)
    assert ce.get_specversion() == "1.0"
    assert ce.get_id() == str(rows[0].id)
    assert ce.get_type() == "govern.consent.withdrawn"
    assert ce.get_source() == "/govern"
    assert ce.get_subject() == str(sid)
    assert ce.get_datacontenttype() == "application/json"
    assert ce.get_extension("partitionkey") == str(sid)
    assert ce.get_extension("sequence") == "1"
    assert ce.get_time() is not None
    assert ce.get_time().utcoffset().total_seconds() == 0
    assert ce.get_data() == {"purpose": "marketing", "categories": ["user.contact.email"]}
    assert first.cloudevent == json.loads(rows[0].payload)
    assert parse_cloudevent(rows[1].payload).get_extension("sequence") == "2"


def test_rolled_back_transaction_leaves_no_event(engine: Engine) -> None:
    def change() -> None:
        with transaction(engine) as s:
            emit(s, type="govern.dsr.completed", aggregate_type="dsr", aggregate_id=1)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change()
    assert _rows(engine) == []


@pytest.mark.parametrize(
    "name",
    [
        "consent.withdrawn",
        "govern.consent",
        "govern.Consent.withdrawn",
        "govern..x",
        "",
        "govern.a-b.c",
    ],
)
def test_malformed_type_is_refused_and_nothing_written(engine: Engine, name: str) -> None:
    with (
        transaction(engine) as s,
        pytest.raises(InvalidEventError, match=r"govern\.<area>\.<what>"),
    ):
        emit(s, type=name, aggregate_type="subject", aggregate_id="a")
    assert _rows(engine) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"aggregate_type": "Subject"}, "aggregate type"),
        ({"aggregate_id": ""}, "aggregate id"),
        ({"aggregate_id": 1.5}, "aggregate id"),
        ({"data": {"x": object()}}, "JSON"),
        ({"data": {"x": float("nan")}}, "JSON"),
        ({"subject": ""}, "subject"),
    ],
)
def test_bad_arguments_raise_typed_errors(engine: Engine, kwargs: dict, match: str) -> None:
    args = {"type": "govern.a.b", "aggregate_type": "subject", "aggregate_id": "k", **kwargs}
    with transaction(engine) as s, pytest.raises(InvalidEventError, match=match):
        emit(s, **args)


SEGMENT = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


@given(st.lists(SEGMENT, min_size=2, max_size=4))
def test_every_lowercase_dotted_name_is_accepted(parts: list[str]) -> None:
    name = "govern." + ".".join(parts)
    assert validate_event_type(name) == name


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_names_are_accepted_exactly_when_shaped_govern_area_what(name: str) -> None:
    parts = name.split(".")
    shaped = (
        len(parts) >= 3
        and parts[0] == "govern"
        and all(p and p[0].isascii() and p[0].islower() and p[0].isalpha() for p in parts[1:])
        and all(all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in p) for p in parts[1:])
    )
    if shaped:
        assert validate_event_type(name) == name
    else:
        with pytest.raises(InvalidEventError):
            validate_event_type(name)


def _emit_many(url: str, aggregate: str, n: int) -> None:
    eng = create_engine(url)
    try:
        for i in range(n):
            with transaction(eng) as s:
                emit(
                    s,
                    type="govern.test.step",
                    aggregate_type="t",
                    aggregate_id=aggregate,
                    data={"i": i},
                )
    finally:
        eng.dispose()


def _check_sequences(engine: Engine, expected: dict[str, int]) -> None:
    rows = _rows(engine)
    per: dict[str, list[int]] = {}
    for r in rows:  # id order = commit order
        per.setdefault(r.aggregateid, []).append(r.sequence)
        assert parse_cloudevent(r.payload).get_extension("sequence") == str(r.sequence)
        assert parse_cloudevent(r.payload).get_id() == str(r.id)
    assert {k: len(v) for k, v in per.items()} == expected
    for seqs in per.values():
        assert seqs == list(range(1, len(seqs) + 1))  # gap-free and in id order


def test_sequences_gap_free_under_concurrent_threads(migrated_url: str, engine: Engine) -> None:
    threads = [
        threading.Thread(target=_emit_many, args=(migrated_url, f"agg{i % 2}", 25))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_sequences(engine, {"agg0": 50, "agg1": 50})


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_sequences_gap_free_under_concurrent_processes(migrated_url: str, engine: Engine) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_emit_many, args=(migrated_url, f"agg{i % 2}", 30)) for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    _check_sequences(engine, {"agg0": 60, "agg1": 60})


def test_tombstones_are_set_based_keys_only_and_continue_sequences(engine: Engine) -> None:
    with transaction(engine) as s:
        subjects = [
            Subject(external_ref=f"ref-{i}", email=f"person{i}@example.com", given_name="Alice")
            for i in range(5)
        ]
        s.add_all(subjects)
        s.flush()
        emit(s, type="govern.dsr.received", aggregate_type="subjects", aggregate_id=subjects[0].id)
    ids = {str(x.id) for x in subjects}
    keep = subjects[4].id
    with transaction(engine) as s:
        n = emit_tombstones(
            s, Subject, select(Subject.id).where(Subject.id != keep), cause="erasure"
        )
        s.execute(Subject.__table__.delete().where(Subject.id != keep))
    assert n == 4
    rows = [r for r in _rows(engine) if r.type == "govern.row.deleted"]
    assert len(rows) == 4
    assert {r.aggregateid for r in rows} == ids - {str(subjects[4].id)}
    first = next(r for r in rows if r.aggregateid == str(subjects[0].id))
    assert first.sequence == 2  # after the dsr event of the same aggregate
    for r in rows:
        assert "example.com" not in r.payload
        assert "Alice" not in r.payload
        ce = parse_cloudevent(r.payload)
        assert ce.get_id() == str(r.id)
        assert ce.get_extension("partitionkey") == r.aggregateid
        assert ce.get_data() == {
            "before": {"id": r.aggregateid},
            "after": None,
            "op": "d",
            "ts_ms": ce.get_data()["ts_ms"],
            "source": {"name": "govern", "table": "subjects", "domain": "core"},
            "cause": "erasure",
            "tombstone": True,
        }


def test_tombstone_payloads_match_emit_member_for_member_with_escaped_composite_keys(
    engine: Engine,
) -> None:
    """Tombstone payloads are assembled from pre-encoded parts: same members, same order
    as emit()'s, keys JSON-escaped by the database (quotes, backslashes, non-ASCII)."""
    from govern.retention.models import PolicyVersion

    names = ['quote"d', "back\\slash", "accent-é", "plain"]
    with transaction(engine) as s:
        s.add_all(
            PolicyVersion(policy_name=n, content_hash=f"h:{i}", body={})
            for i, n in enumerate(names)
        )
        s.flush()
        emit(
            s,
            type="govern.row.deleted",
            aggregate_type="retention_policy_versions",
            aggregate_id="x",
        )
        n = emit_tombstones(
            s,
            PolicyVersion,
            select(PolicyVersion.policy_name, PolicyVersion.content_hash),
            cause="retention",
        )
        s.execute(PolicyVersion.__table__.delete())
    assert n == 4
    rows = _rows(engine)
    reference = json.loads(rows[0].payload)
    tombstones = rows[1:]
    assert sorted(r.aggregateid for r in tombstones) == sorted(
        f"{name}:h:{i}" for i, name in enumerate(names)
    )
    for r in tombstones:
        doc = json.loads(r.payload)
        assert list(doc) == list(reference)
        assert doc["partitionkey"] == r.aggregateid
        assert doc["id"] == str(r.id)
        assert doc["sequence"] == str(r.sequence)
        assert doc["time"].endswith("Z")
        name, _, key_hash = r.aggregateid.partition(":")
        assert list(doc["data"]) == [
            "before",
            "after",
            "op",
            "ts_ms",
            "source",
            "cause",
            "tombstone",
        ]
        assert doc["data"]["before"] == {"policy_name": name, "content_hash": key_hash}
        assert list(doc["data"]["before"]) == ["policy_name", "content_hash"]
        assert parse_cloudevent(r.payload).get_type() == "govern.row.deleted"


def test_tombstones_one_per_key_when_the_key_select_repeats_keys(engine: Engine) -> None:
    """A key select that reads the table's own key from the table alone skips DISTINCT;
    one with a join (keys repeated per joined row) still gets one tombstone per key."""
    from govern.retention.models import Approval, PolicyVersion

    with transaction(engine) as s:
        s.add_all(PolicyVersion(policy_name=f"p{i}", content_hash="h", body={}) for i in range(3))
        s.add_all(
            Approval(policy_name=f"p{i}", content_hash="h", approved_by=who)
            for i in range(2)
            for who in ("ann", "bob", "cy")
        )
        s.flush()
        joined = select(PolicyVersion.policy_name, PolicyVersion.content_hash).join(
            Approval,
            (Approval.policy_name == PolicyVersion.policy_name)
            & (Approval.content_hash == PolicyVersion.content_hash),
        )
        assert emit_tombstones(s, PolicyVersion, joined, cause="retention") == 2
        own = select(PolicyVersion.policy_name, PolicyVersion.content_hash).where(
            PolicyVersion.policy_name == "p2"
        )
        assert emit_tombstones(s, PolicyVersion, own, cause="retention") == 1
    rows = _rows(engine)
    assert sorted((r.aggregateid, r.sequence) for r in rows) == [
        ("p0:h", 1),
        ("p1:h", 1),
        ("p2:h", 1),
    ]
    for r in rows:
        doc = parse_cloudevent(r.payload)
        assert doc.get_id() == str(r.id)
        name = r.aggregateid.split(":")[0]
        assert doc.get_data()["before"] == {"policy_name": name, "content_hash": "h"}


def test_tombstones_refuse_a_select_that_is_not_the_key(engine: Engine) -> None:
    with transaction(engine) as s, pytest.raises(InvalidEventError, match="primary-key"):
        emit_tombstones(s, Subject, select(Subject.id, Subject.status), cause="erasure")
    with transaction(engine) as s, pytest.raises(InvalidEventError, match="cause"):
        emit_tombstones(s, Subject, select(Subject.id), cause="Erasure!")


def test_tombstones_reuse_a_key_select_with_placeholders(engine: Engine) -> None:
    with transaction(engine) as s:
        subjects = [Subject(external_ref=f"ref-{i}", email=f"p{i}@example.com") for i in range(3)]
        s.add_all(subjects)
        s.flush()
    keys = select(Subject.id).where(Subject.id == bindparam("sid"))  # one object, reused
    for subj in subjects[:2]:
        with transaction(engine) as s:
            n = emit_tombstones(s, Subject, keys, cause="erasure", params={"sid": subj.id})
            s.execute(Subject.__table__.delete().where(Subject.id == subj.id))
            assert n == 1
    rows = [r for r in _rows(engine) if r.type == "govern.row.deleted"]
    # each call picked its own row, with the same statement: the third subject is untouched
    assert sorted(r.aggregateid for r in rows) == sorted(str(x.id) for x in subjects[:2])
    assert [parse_cloudevent(r.payload).get_data()["cause"] for r in rows] == ["erasure"] * 2
