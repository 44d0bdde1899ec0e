"""Art. 19 recipients and notification hooks: what the DSR queue puts in the outbox."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from govern import dsr
from govern.db import session_factory, transaction
from govern.dsr import WorkCalendar
from govern.events import Event, HookRegistry, OutboxEvent
from govern.types.utc import utcnow

from .conftest import populate_subject


def _outbox(engine: Engine) -> list[OutboxEvent]:
    with transaction(engine) as s:
        return list(s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def test_erasure_tells_recipients_with_keys_only(
    engine: Engine, calendar: WorkCalendar, export_dir: Path
) -> None:
    with transaction(engine) as s:
        sid = populate_subject(s, events=4, email="ada.secret@example.com")
        out = dsr.submit(
            s,
            type="erasure",
            identifiers={"email": "ada.secret@example.com"},
            calendar=calendar,
            actor="portal",
            verified=True,
        )
        dsr.approve(s, out.request.id, actor="dpo")
    seen: list[Event] = []
    hooks = HookRegistry()
    hooks.register("govern.dsr.completed", seen.append)
    dsr.process_request(engine, out.request.id, export_dir=export_dir, hooks=hooks)
    events = _outbox(engine)
    types = [e.type for e in events]
    assert types[0] == "govern.dsr.submitted"
    assert types[-1] == "govern.dsr.completed"
    tomb = [e for e in events if e.type == "govern.row.deleted"]
    assert {e.aggregatetype for e in tomb} >= {"analytics_events", "accounts", "wallets"}
    assert len([e for e in tomb if e.aggregatetype == "analytics_events"]) == 4
    erased = {
        json.loads(e.payload)["data"]["table"] for e in events if e.type == "govern.dsr.erased"
    }
    assert {"subjects", "payments", "orders", "posts"} <= erased
    everything = " ".join(e.payload for e in events)
    for secret in ("ada.secret@example.com", "4111111111111111", "Lovelace", "Main St"):
        assert secret not in everything
    assert str(sid) in everything
    assert [str(out.request.id)] == [e.data["request_id"] for e in seen]


def test_rectification_and_restriction_events(
    engine: Engine, calendar: WorkCalendar, export_dir: Path
) -> None:
    with transaction(engine) as s:
        sid = populate_subject(s)
        ids = []
        for type_, corr in (
            ("rectification", {"subjects.phone": "+4940999999"}),
            ("restriction", None),
        ):
            o = dsr.submit(
                s,
                type=type_,
                identifiers={"subject_id": str(sid)},
                calendar=calendar,
                actor="portal",
                verified=True,
                corrections=corr,
            )
            dsr.approve(s, o.request.id, actor="dpo")
            ids.append(o.request.id)
    dsr.work(engine, export_dir=export_dir, once=True)
    events = _outbox(engine)
    rect = [json.loads(e.payload)["data"] for e in events if e.type == "govern.dsr.rectified"]
    assert [(d["table"], d["columns"]) for d in rect] == [("subjects", ["phone"])]
    assert "+4940999999" not in " ".join(e.payload for e in events)
    restricted = {
        json.loads(e.payload)["data"]["table"] for e in events if e.type == "govern.dsr.restricted"
    }
    assert {"orders", "analytics_events", "posts"} <= restricted


def test_due_soon_and_overdue_notices_fire_once(engine: Engine, calendar: WorkCalendar) -> None:
    now = utcnow()
    with transaction(engine) as s:
        late = dsr.submit(
            s,
            type="access",
            identifiers={"email": "a@example.com"},
            calendar=calendar,
            actor="portal",
            received_at=now - dt.timedelta(days=40),
            verified=True,
        ).request.id
        soon = dsr.submit(
            s,
            type="access",
            identifiers={"email": "b@example.com"},
            calendar=calendar,
            actor="portal",
            received_at=now - dt.timedelta(days=27),
            verified=True,
        ).request.id
        dsr.submit(
            s,
            type="access",
            identifiers={"email": "c@example.com"},
            calendar=calendar,
            actor="portal",
            verified=True,
        )
    got: list[tuple[str, uuid.UUID]] = []
    hooks = HookRegistry()
    hooks.register("govern.dsr.*", lambda e: got.append((e.type, uuid.UUID(e.data["request_id"]))))
    factory = session_factory(engine)
    hooks.attach(factory)
    for _ in range(2):
        with factory() as s, s.begin():
            dsr.check_deadlines(s, now=now)
    assert [("govern.dsr.overdue", late), ("govern.dsr.due_soon", soon)] == got
