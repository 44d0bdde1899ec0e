"""Appending events to the outbox, in the caller's transaction (never committing).

Ordering. Sinks remember a single position (the last outbox id delivered), which is only
safe if ids become visible in increasing order. On PostgreSQL a sequence hands out ids at
insert time, not at commit, so a transaction that inserted id 10 can commit after one
that inserted id 11 and a relay would skip 10. govern therefore takes a transaction-scoped
advisory lock before it appends, so event-writing transactions commit one at a time from
their first event on and ids are visible in order. On SQLite the database write lock does
the same. The per-aggregate ``sequence`` is computed under that lock in the INSERT itself,
so it is gap-free and ordered under concurrent writers.

The CloudEvent JSON is built by the database in the same INSERT (``json_object`` on SQLite,
``json_build_object`` on PostgreSQL), because only there is the new id known; one
statement per event, or one statement for any number of tombstones.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Select,
    Table,
    Text,
    Uuid,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal,
    null,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.orm import Session

from govern.errors import InvalidEventError
from govern.events.models import OUTBOX_TABLE, OutboxEvent
from govern.events.schemas import Event
from govern.types.utc import utcnow

EVENT_TYPE = re.compile(r"govern(?:\.[a-z][a-z0-9_]*){2,}")
AGGREGATE_TYPE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
SOURCE = "/govern"
ADVISORY_LOCK_KEY = 0x676F7665726E  # "govern": serialises outbox appends on PostgreSQL
PG_ID_SEQUENCE = f"{OUTBOX_TABLE}_id_seq"

HOOKS_KEY = "govern.events.hooks"
PENDING_KEY = "govern.events.pending"
_LOCKED_KEY = "govern.events.locked"
_SQLITE_SEQUENCE = table("sqlite_sequence", column("name", Text), column("seq", BigInteger))


def validate_event_type(name: str) -> str:
    """Return ``name`` if it is ``govern.<area>.<what>`` (lowercase, dotted), else raise.

    Raises:
        InvalidEventError: the name is not a string of that shape (at most 128 characters).
    """
    if not isinstance(name, str) or len(name) > 128 or not EVENT_TYPE.fullmatch(name):
        shown = repr(name)[:80]
        raise InvalidEventError(
            f"event type {shown} must look like govern.<area>.<what> "
            "(lowercase letters, digits and '_', dot-separated)"
        )
    return name


def _aggregate(aggregate_type: str, aggregate_id: object) -> tuple[str, str]:
    if not isinstance(aggregate_type, str) or not AGGREGATE_TYPE.fullmatch(aggregate_type):
        raise InvalidEventError(
            f"aggregate type {repr(aggregate_type)[:80]} must be lowercase letters, digits, "
            "'_' or '.', at most 64 characters"
        )
    if isinstance(aggregate_id, bool) or not isinstance(aggregate_id, str | int | uuid.UUID):
        raise InvalidEventError("aggregate id must be a str, int or UUID")
    text = str(aggregate_id)
    if not 0 < len(text) <= 128 or not text.isprintable():
        raise InvalidEventError("aggregate id must be 1 to 128 printable characters")
    return aggregate_type, text


def json_default(value: Any) -> Any:
    """JSON for the types keys and categories come in (UUIDs, times, decimals, enums)."""
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(type(value).__name__)


def _data_json(data: Mapping[str, Any] | None) -> str:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidEventError("event data must be a mapping of keys and categories")
    try:
        return json.dumps(data, default=json_default, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"event data is not JSON-serialisable ({exc})") from None


def cloudevent_time(stamp: dt.datetime) -> str:
    """RFC 3339 with a ``Z``, as CloudEvents' JSON format writes UTC times."""
    return stamp.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _table() -> Table:
    table = OutboxEvent.__table__
    assert isinstance(table, Table)
    return table


def _lock(session: Session) -> None:
    """Take the outbox's advisory lock once per (sub)transaction on PostgreSQL."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return
    current = session.get_nested_transaction() or session.get_transaction()
    if session.info.get(_LOCKED_KEY) is current:
        return
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
    session.info[_LOCKED_KEY] = current


def _txt(value: Any) -> ColumnElement[str]:
    return cast(literal(value, Text), Text)


def _param(name: str) -> ColumnElement[str]:
    return cast(bindparam(name, type_=Text), Text)


def _build_insert(
    pg: bool,
    rows: Select[Any],
    data: Callable[[Any, Callable[..., Any]], ColumnElement[Any]],
    with_subject: bool,
) -> Any:
    """``INSERT ... SELECT`` one outbox row per row of ``rows`` (which has a column ``aid``).

    Values come as bind parameters (``etype``, ``atype``, ``source``, ``subject``,
    ``ctime``, ``now``), so that one statement object, built once, serves every call
    (SQLAlchemy then reuses its compiled form). ``data(s, json_object)`` builds the
    CloudEvent ``data`` from the CTE's columns.
    """
    o = _table().alias("o")
    t = _table()
    src = rows.subquery("src")
    seq = (
        select(func.coalesce(func.max(o.c.sequence), 0) + 1)
        .where(o.c.aggregatetype == _param("atype"), o.c.aggregateid == src.c.aid)
        .scalar_subquery()
    )
    if pg:
        new_id: ColumnElement[Any] = func.nextval(PG_ID_SEQUENCE)
        json_object: Callable[..., Any] = func.json_build_object
    else:
        # AUTOINCREMENT's high-water mark, so pruned ids are never reused.
        base = (
            select(func.coalesce(func.max(_SQLITE_SEQUENCE.c.seq), 0))
            .where(_SQLITE_SEQUENCE.c.name == OUTBOX_TABLE)
            .scalar_subquery()
        )
        top = select(func.coalesce(func.max(o.c.id), 0)).scalar_subquery()
        new_id = func.max(base, top) + func.row_number().over(order_by=src.c.aid)
        json_object = func.json_object
    s = select(new_id.label("id"), seq.label("seq"), *src.c).cte("s").prefix_with("MATERIALIZED")
    fields: list[Any] = [
        "specversion",
        _txt("1.0"),
        "id",
        cast(s.c.id, Text),
        "source",
        _param("source"),
        "type",
        _param("etype"),
    ]
    if with_subject:
        fields += ["subject", _param("subject")]
    fields += [
        "time",
        _param("ctime"),
        "datacontenttype",
        _txt("application/json"),
        "partitionkey",
        s.c.aid,
        "aggregatetype",
        _param("atype"),
        "sequence",
        cast(s.c.seq, Text),
        "data",
        data(s, json_object),
    ]
    payload = json_object(*[_txt(f) if isinstance(f, str) else f for f in fields])
    if pg:
        payload = cast(payload, Text)
    return insert(t).from_select(
        ["id", "aggregatetype", "aggregateid", "type", "sequence", "created_at", "payload"],
        select(
            s.c.id,
            _param("atype"),
            s.c.aid,
            _param("etype"),
            s.c.seq,
            bindparam("now", type_=t.c.created_at.type),
            payload,
        ),
    )


def _params(
    event_type: str, aggregate_type: str, subject: str | None, source: str, now: dt.datetime
) -> dict[str, Any]:
    params = {
        "etype": event_type,
        "atype": aggregate_type,
        "source": source,
        "ctime": cloudevent_time(now),
        "now": now,
    }
    if subject is not None:
        params["subject"] = subject
    return params


def _emit_data(pg: bool) -> Callable[[Any, Callable[..., Any]], ColumnElement[Any]]:
    def build(s: Any, json_object: Callable[..., Any]) -> ColumnElement[Any]:
        doc = bindparam("data", type_=Text)
        return cast(cast(doc, Text), PG_JSON()) if pg else func.json(doc)

    return build


_EMIT_STATEMENTS: dict[tuple[bool, bool], Any] = {}


def _emit_statement(pg: bool, with_subject: bool) -> Any:
    key = (pg, with_subject)
    stmt = _EMIT_STATEMENTS.get(key)
    if stmt is None:
        rows = select(_param("aid").label("aid"))
        stmt = _build_insert(pg, rows, _emit_data(pg), with_subject)
        stmt = stmt.returning(_table().c.payload)
        _EMIT_STATEMENTS[key] = stmt
    return stmt


def _track(session: Session, payloads: list[str]) -> list[Event]:
    out = [Event.from_payload(p) for p in payloads]
    if HOOKS_KEY in session.info:
        session.info.setdefault(PENDING_KEY, []).extend(out)
    return out


def emit(
    session: Session,
    *,
    type: str,
    aggregate_type: str,
    aggregate_id: str | int | uuid.UUID,
    data: Mapping[str, Any] | None = None,
    subject: str | None = None,
    source: str = SOURCE,
) -> Event:
    """Append one CloudEvent to the outbox in ``session``'s transaction; never commits.

    Args:
        session: the caller's session; the event commits or rolls back with its change.
        type: ``govern.<area>.<what>``, e.g. ``govern.consent.withdrawn``.
        aggregate_type: what the event is about, e.g. ``subject`` or ``dsr``; with
            ``aggregate_id`` it names the aggregate whose events are numbered 1, 2, 3...
        aggregate_id: the aggregate's key (also the CloudEvents ``partitionkey``).
        data: JSON data: keys, ids, counts and data categories, never personal values.
        subject: the CloudEvents ``subject`` (a key, never a name or an e-mail).
        source: the CloudEvents ``source`` URI-reference (default ``/govern``).

    Returns:
        The stored event (outbox id, per-aggregate sequence, CloudEvent dict).

    Raises:
        InvalidEventError: malformed type, aggregate, subject or unserialisable data.
    """
    validate_event_type(type)
    aggregate_type, aid = _aggregate(aggregate_type, aggregate_id)
    data_json = _data_json(data)
    if subject is not None and (not isinstance(subject, str) or not 0 < len(subject) <= 256):
        raise InvalidEventError("subject must be a non-empty string of at most 256 characters")
    if not isinstance(source, str) or not 0 < len(source) <= 256:
        raise InvalidEventError("source must be a non-empty URI-reference")
    _lock(session)
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    params = _params(type, aggregate_type, subject, source, utcnow())
    params.update(aid=aid, data=data_json)
    payloads = conn.execute(_emit_statement(pg, subject is not None), params).scalars().all()
    return _track(session, list(payloads))[0]


def _key_text(col: Any, pg: bool, pk_col: Any) -> ColumnElement[str]:
    """A key column as text, the same text ``str(value)`` gives in Python."""
    if isinstance(pk_col.type, Uuid) and not pg:
        # SQLite stores UUIDs as 32 hex digits; match str(uuid.UUID): 8-4-4-4-12, lowercase.
        h = func.lower(cast(col, Text))
        parts = [func.substr(h, a, n) for a, n in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
        out: ColumnElement[str] = parts[0]
        for p in parts[1:]:
            out = out.concat("-").concat(p)
        return out
    return cast(col, Text)


def emit_tombstones(
    session: Session,
    table: Table | type[Any],
    key_select: Select[Any],
    *,
    cause: str,
    type: str = "govern.row.deleted",
) -> int:
    """Append a keys-only delete event for every row ``key_select`` picks; set-based.

    Call it in the same transaction, *before* the bulk ``DELETE`` it describes, with a
    select of the table's primary-key columns (in primary-key order) for the rows about
    to go, for example ``select(Order.id).where(Order.placed_at < cutoff)``. One
    ``INSERT ... SELECT`` writes every event; no row is loaded into Python.

    Each event's ``aggregate_type`` is the table name and ``aggregate_id`` the key
    (composite keys joined with ``:``); ``data`` is a Debezium-style envelope with
    ``op = "d"``, ``before`` holding only the keys, ``after = null`` and ``cause``.

    Args:
        session: the caller's session; never committed here.
        table: the governed table (or its mapped class) the rows belong to.
        key_select: a select of the primary-key columns of the rows to be deleted.
        cause: why the rows go, lowercase (e.g. ``erasure``, ``retention``).
        type: the event type (default ``govern.row.deleted``).

    Returns:
        The number of events written.
    """
    validate_event_type(type)
    tbl = table if isinstance(table, Table) else getattr(table, "__table__", None)
    if not isinstance(tbl, Table):
        raise InvalidEventError("emit_tombstones needs a Table or a mapped class")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", cause or ""):
        raise InvalidEventError("cause must be a lowercase word such as 'erasure'")
    aggregate_type, _ = _aggregate(tbl.name, "x")
    pk = list(tbl.primary_key.columns)
    keys = key_select.subquery("keys")
    kcols = list(keys.c)
    if len(kcols) != len(pk) or not pk:
        raise InvalidEventError(
            f"key_select must select the {len(pk)} primary-key column(s) of {tbl.name}"
        )
    pg = session.connection().dialect.name == "postgresql"
    texts = [_key_text(k, pg, p) for k, p in zip(kcols, pk, strict=True)]
    aid: ColumnElement[str] = texts[0]
    for extra in texts[1:]:
        aid = aid.concat(":").concat(extra)
    labelled = [t.label(f"k{i}") for i, t in enumerate(texts)]
    rows = select(aid.label("aid"), *labelled).distinct()
    now = utcnow()
    domain = str(tbl.info.get("domain", "host"))

    def build(s: Any, json_object: Callable[..., Any]) -> ColumnElement[Any]:
        before: list[Any] = []
        for i, col in enumerate(pk):
            before += [_txt(col.name), s.c[f"k{i}"]]
        return json_object(  # type: ignore[no-any-return]
            _txt("before"),
            json_object(*before),
            _txt("after"),
            null(),
            _txt("op"),
            _txt("d"),
            _txt("ts_ms"),
            cast(literal(int(now.timestamp() * 1000)), BigInteger),
            _txt("source"),
            json_object(
                _txt("name"),
                _txt("govern"),
                _txt("table"),
                _txt(tbl.name),
                _txt("domain"),
                _txt(domain),
            ),
            _txt("cause"),
            _txt(cause),
            _txt("tombstone"),
            cast(literal(True), Boolean) if pg else func.json("true"),
        )

    _lock(session)
    stmt = _build_insert(pg, rows, build, with_subject=False)
    params = _params(type, aggregate_type, None, SOURCE, now)
    if HOOKS_KEY in session.info:
        payloads = session.connection().execute(stmt.returning(_table().c.payload), params)
        return len(_track(session, list(payloads.scalars())))
    conn = session.connection()
    if pg:
        return len(conn.execute(stmt.returning(_table().c.id), params).all())
    # No RETURNING on SQLite: fetching one id per row costs more than writing the row, and
    # its rowcount is -1 for a statement starting with WITH; changes() has the count.
    conn.execute(stmt, params)
    return int(conn.exec_driver_sql("SELECT changes()").scalar_one())
