"""The relay: at least once, in order, to jsonl / webhook / kafka; leases, status, replay."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from sqlalchemy import select
from sqlalchemy.engine import Engine

from govern.db import transaction
from govern.errors import SinkConfigError, UnknownSinkError, UsageError
from govern.events import EventSink, emit
from govern.events.relay import relay, replay, status
from govern.events.sinks import (
    JsonlSink,
    OutboxRow,
    build_sink,
    kafka_message,
    parse_sinks,
    sink_config,
)
from tests.events.conftest import Receiver, parse_cloudevent, webhook


def _emit(engine: Engine, n: int, aggregates: int = 3, start: int = 0) -> None:
    with transaction(engine) as s:
        for i in range(start, start + n):
            emit(
                s,
                type="govern.retention.purged",
                aggregate_type="policy",
                aggregate_id=f"p{i % aggregates}",
                data={"i": i, "categories": ["user.contact"]},
            )


def _lines(directory: Path) -> list[str]:
    return [
        line
        for f in sorted(directory.glob("date=*/events.jsonl"))
        for line in f.read_text().splitlines()
    ]


def test_jsonl_relay_delivers_in_order_and_records_position(engine: Engine, tmp_path: Path) -> None:
    _emit(engine, 25)
    sinks = {"files": sink_config({"kind": "jsonl", "directory": str(tmp_path)})}
    report = relay(engine, sinks, batch_size=7)
    assert report.ok
    assert [(r.sink, r.delivered, r.position, r.backlog) for r in report.sinks] == [
        ("files", 25, 25, 0)
    ]
    lines = _lines(tmp_path)
    events = [parse_cloudevent(line) for line in lines]
    assert [int(e.get_id()) for e in events] == list(range(1, 26))
    days = {e.get_time().astimezone(dt.UTC).date() for e in events}
    # each event under its own creation day (not today's: midnight may pass meanwhile)
    assert {p.parent.name for p in tmp_path.glob("date=*/events.jsonl")} == {
        f"date={d.isoformat()}" for d in days
    }
    _emit(engine, 5, start=25)
    assert relay(engine, sinks).sinks[0].delivered == 5
    assert len(_lines(tmp_path)) == 30
    with transaction(engine) as s:
        st = status(s, sinks)
    assert (st.outbox_last_id, st.sinks[0].position, st.sinks[0].backlog) == (30, 30, 0)


def test_jsonl_files_are_partitioned_by_utc_day(tmp_path: Path) -> None:
    sink = JsonlSink("files", sink_config({"kind": "jsonl", "directory": str(tmp_path)}))  # type: ignore[arg-type]
    late = dt.datetime(2026, 1, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    rows = [
        OutboxRow(
            1, "a", "1", "govern.a.b", dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC), '{"id":"1"}'
        ),
        OutboxRow(2, "a", "1", "govern.a.b", late, '{"id":"2"}'),
    ]
    sink.deliver(rows)
    assert (tmp_path / "date=2026-01-01" / "events.jsonl").read_text() == '{"id":"1"}\n'
    assert (tmp_path / "date=2026-01-02" / "events.jsonl").read_text() == '{"id":"2"}\n'


def test_jsonl_cuts_a_partial_last_line_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "date=2026-01-01" / "events.jsonl"
    path.parent.mkdir()
    path.write_text('{"id":"1"}\n{"id":"2", "trunc')
    sink = JsonlSink("files", sink_config({"kind": "jsonl", "directory": str(tmp_path)}))  # type: ignore[arg-type]
    stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    sink.deliver([OutboxRow(2, "a", "1", "govern.a.b", stamp, '{"id":"2"}')])
    assert path.read_text() == '{"id":"1"}\n{"id":"2"}\n'


def test_webhook_posts_signed_cloudevents(engine: Engine, receiver: Receiver) -> None:
    _emit(engine, 6)
    receiver.fail_next = 2  # two 503s: retried with backoff, nothing lost
    report = relay(engine, {"hook": sink_config(webhook(receiver.url))})
    assert report.ok, report
    assert receiver.ids() == [1, 2, 3, 4, 5, 6]
    assert receiver.bad_signatures == 0
    for rec in receiver.received:
        assert rec["content_type"].startswith("application/cloudevents+json")
        ce = parse_cloudevent(rec["body"])
        assert rec["event_id"] == ce.get_id()
        assert ce.get_type() == "govern.retention.purged"


def test_wrong_secret_is_detected_by_the_receiver(engine: Engine, receiver: Receiver) -> None:
    _emit(engine, 1)
    relay(engine, {"hook": sink_config(webhook(receiver.url, secret="another-secret-0123456"))})
    assert receiver.bad_signatures == 1


def test_down_webhook_keeps_backlog_then_catches_up(engine: Engine, receiver: Receiver) -> None:
    _emit(engine, 4)
    down = {"hook": sink_config(webhook("http://127.0.0.1:9/nothing-listens", max_attempts=2))}
    for _ in range(2):
        report = relay(engine, down)
        assert not report.ok
        assert (report.sinks[0].position, report.sinks[0].backlog) == (0, 4)
        assert "not delivered" in (report.sinks[0].error or "")
    _emit(engine, 3, start=4)
    with transaction(engine) as s:
        st = status(s, down).sinks[0]
    assert (st.backlog, st.position) == (7, 0)
    assert st.last_error is not None
    assert "secret" not in st.last_error
    up = {"hook": sink_config(webhook(receiver.url))}
    assert relay(engine, up).ok
    assert receiver.ids() == list(range(1, 8))
    with transaction(engine) as s:
        st = status(s, up).sinks[0]
    assert (st.backlog, st.position, st.last_error) == (0, 7, None)


def test_refused_event_stops_the_stream_at_it(engine: Engine, receiver: Receiver) -> None:
    _emit(engine, 3)
    receiver.fail_next = 100
    report = relay(engine, {"hook": sink_config(webhook(receiver.url, max_attempts=1))})
    assert (report.ok, report.sinks[0].position, report.sinks[0].backlog) == (False, 0, 3)
    assert "HTTP 503" in (report.sinks[0].error or "")


def test_second_relay_skips_a_leased_sink(engine: Engine, tmp_path: Path) -> None:
    from govern.events.relay import _acquire

    _emit(engine, 3)
    sinks = {"files": sink_config({"kind": "jsonl", "directory": str(tmp_path)})}
    assert _acquire(engine, "files", "other-relay", 60)
    report = relay(engine, sinks)
    assert report.sinks[0].delivered == 0
    assert report.sinks[0].skipped == "another relay holds the lease"
    assert _lines(tmp_path) == []


def test_replay_rewinds_and_relay_delivers_again(engine: Engine, tmp_path: Path) -> None:
    _emit(engine, 10)
    sinks = {"files": sink_config({"kind": "jsonl", "directory": str(tmp_path)})}
    relay(engine, sinks)
    with transaction(engine) as s:
        result = replay(s, sinks, "files", 8)
    assert (result.previous_position, result.position, result.backlog) == (10, 7, 3)
    assert relay(engine, sinks).sinks[0].delivered == 3
    ids = [int(json.loads(x)["id"]) for x in _lines(tmp_path)]
    assert ids == [*range(1, 11), 8, 9, 10]


def test_replay_and_relay_refuse_bad_input_without_changes(engine: Engine, tmp_path: Path) -> None:
    sinks = {"files": sink_config({"kind": "jsonl", "directory": str(tmp_path)})}
    _emit(engine, 2)
    with pytest.raises(UnknownSinkError, match="unknown sink 'nope'"):
        relay(engine, sinks, sink="nope")
    with pytest.raises(UnknownSinkError), transaction(engine) as s:
        replay(s, sinks, "nope", 1)
    with pytest.raises(UsageError, match="only rewinds"), transaction(engine) as s:
        replay(s, sinks, "files", 2)
    with pytest.raises(UsageError, match="1 or more"), transaction(engine) as s:
        replay(s, sinks, "files", 0)
    with transaction(engine) as s:
        assert s.scalars(select(EventSink)).all() == []


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ('[sinks.a]\nkind = "ftp"\n', "kind"),
        ('[sinks.a]\nkind = "jsonl"\ndirectory = "x"\ncolour = 1\n', "colour"),
        ('[sinks.A]\nkind = "jsonl"\ndirectory = "x"\n', "sink name"),
        ('[sinks.a]\nkind = "webhook"\nurl = "http://h/x"\nsecret = "short"\n', "16"),
        (
            '[sinks.a]\nkind = "webhook"\nurl = "file:///etc/x"\nsecret = "0123456789abcdefg"\n',
            "http",
        ),
        ("[sinks.a\n", "TOML"),
        ("[other]\nx = 1\n", "other"),
    ],
)
def test_sink_config_is_strict(toml: str, match: str) -> None:
    with pytest.raises(SinkConfigError, match=match) as info:
        parse_sinks(toml)
    assert "0123456789abcdefg" not in str(info.value)


def _row(payload: str, aggregateid: str = "p1") -> OutboxRow:
    return OutboxRow(1, "policy", aggregateid, "govern.a.b", dt.datetime.now(dt.UTC), payload)


def test_kafka_messages_are_cloudevents_binary_mode(engine: Engine) -> None:
    with transaction(engine) as s:
        ev = emit(
            s,
            type="govern.keys.rotated",
            aggregate_type="key",
            aggregate_id="k-7",
            subject="k-7",
            data={"version": 3},
        )
    with transaction(engine) as s:
        from govern.events import OutboxEvent

        stored = s.get(OutboxEvent, ev.id)
        assert stored is not None
        row = OutboxRow(
            stored.id,
            stored.aggregatetype,
            stored.aggregateid,
            stored.type,
            stored.created_at,
            stored.payload,
        )
    key, value, headers = kafka_message(row)
    assert key == b"k-7"
    msg = KafkaMessage(
        headers={k: v for k, v in headers if isinstance(v, bytes)}, key=key, value=value
    )
    parsed = from_binary(msg, JSONFormat())
    structured = parse_cloudevent(row.payload)
    assert parsed.get_attributes() == structured.get_attributes()
    assert parsed.get_data() == {"version": 3}
    assert parsed.get_extension("partitionkey") == "k-7"


def test_kafka_sink_without_a_broker_keeps_the_backlog(engine: Engine) -> None:
    pytest.importorskip("confluent_kafka")
    _emit(engine, 2)
    sinks = {
        "bus": sink_config({"kind": "kafka", "bootstrap_servers": "127.0.0.1:1", "timeout": 1.0})
    }
    report = relay(engine, sinks)
    assert not report.ok
    assert (report.sinks[0].position, report.sinks[0].backlog) == (0, 2)
    assert "kafka sink bus" in (report.sinks[0].error or "")


def test_kafka_sink_names_the_extra_when_missing() -> None:
    code = (
        "import sys; sys.modules['confluent_kafka'] = None\n"
        "from govern.events.sinks import build_sink, sink_config\n"
        "from govern.errors import MissingExtraError\n"
        "try:\n"
        "    build_sink('bus', sink_config({'kind': 'kafka', 'bootstrap_servers': 'h:9092'}))\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'govern[kafka]'" in out.stdout


def test_build_sink_kinds() -> None:
    cfg: Any = sink_config({"kind": "jsonl", "directory": "/tmp/x"})
    assert isinstance(build_sink("a", cfg), JsonlSink)
    with pytest.raises(SinkConfigError, match="kind"):
        sink_config({"kind": "smtp"})
