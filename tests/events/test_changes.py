"""track_changes: Debezium-shaped row events for governed tables, personal values never."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.engine import Engine

from govern.db import session_factory
from govern.domains.core import Subject
from govern.events import OutboxEvent, track_changes
from tests.events.conftest import parse_cloudevent

EMAIL_CATS = {"categories": ["user.contact.email"]}


def _events(engine: Engine) -> list[dict]:
    with session_factory(engine)() as s:
        rows = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    for r in rows:
        assert "alice@example.com" not in r.payload
        assert "bob@example.com" not in r.payload
        assert "Alice" not in r.payload
    return [parse_cloudevent(r.payload) for r in rows]


def test_insert_update_delete_produce_envelopes(engine: Engine) -> None:
    factory = session_factory(engine)
    track_changes(factory)
    with factory() as s, s.begin():
        subject = Subject(external_ref="ext-1", email="alice@example.com", given_name="Alice")
        s.add(subject)
    with factory() as s, s.begin():
        row = s.get(Subject, subject.id)
        assert row is not None
        row.status = "restricted"
        row.email = "bob@example.com"
    with factory() as s, s.begin():
        s.delete(s.get(Subject, subject.id))
    events = _events(engine)
    assert [e.get_type() for e in events] == [
        "govern.row.created",
        "govern.row.updated",
        "govern.row.deleted",
    ]
    assert {e.get_extension("partitionkey") for e in events} == {str(subject.id)}
    assert [e.get_extension("sequence") for e in events] == ["1", "2", "3"]
    created, updated, deleted = (e.get_data() for e in events)
    assert created["op"] == "c"
    assert created["before"] is None
    assert created["after"]["email"] == EMAIL_CATS
    assert created["after"]["status"] == "active"
    assert created["after"]["id"] == str(subject.id)
    assert created["source"] == {"name": "govern", "table": "subjects", "domain": "core"}
    assert updated["op"] == "u"
    assert updated["before"]["status"] == "active"
    assert updated["after"]["status"] == "restricted"
    assert updated["after"]["email"] == EMAIL_CATS
    assert deleted["op"] == "d"
    assert deleted["after"] is None
    assert deleted["before"]["status"] == "restricted"
    assert isinstance(created["ts_ms"], int)


def test_untracked_factory_and_ungoverned_changes_emit_nothing(engine: Engine) -> None:
    with session_factory(engine)() as s, s.begin():
        s.add(Subject(external_ref="ext-2"))
    assert _events(engine) == []


def test_only_listed_tables_are_tracked(engine: Engine) -> None:
    factory = session_factory(engine)
    track_changes(factory, tables={"accounts"})
    with factory() as s, s.begin():
        s.add(Subject(external_ref="ext-3"))
    assert _events(engine) == []


def test_rolled_back_flush_leaves_no_change_event(engine: Engine) -> None:
    factory = session_factory(engine)
    track_changes(factory)
    with factory() as s:
        s.begin()
        s.add(Subject(external_ref="ext-4"))
        s.flush()
        s.rollback()
    assert _events(engine) == []


def test_noop_update_emits_nothing(engine: Engine) -> None:
    factory = session_factory(engine)
    track_changes(factory)
    with factory() as s, s.begin():
        subj = Subject(external_ref="ext-5", status="active")
        s.add(subj)
    with factory() as s, s.begin():
        row = s.get(Subject, subj.id)
        assert row is not None
        row.status = "active"
    assert [json.loads(json.dumps(e.get_type())) for e in _events(engine)] == ["govern.row.created"]
