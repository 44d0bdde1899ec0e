"""Appending events to the outbox, in the caller's transaction (never committing).

Ordering. Sinks remember a position and must never skip an event that commits later.
On PostgreSQL ids come from a sequence at insert time, not at commit, so a transaction
holding id 10 may commit after one holding id 11: "id > position" alone would skip 10.
Rather than making every event writer in the database wait for the others (one global
lock, as govern did up to core_0011), each row records ``txid``: the writing
transaction's id (``pg_current_xact_id()``), raised to the ``txid`` of the aggregate's
previous event when that is higher. Sinks take events in ``(txid, id)`` order and the
relay reads only rows with ``txid`` below the oldest transaction still open in its
snapshot (``pg_snapshot_xmin``): every open or future transaction has an id at or above
that bound, so nothing can later appear before what the relay has read. See
``docs/events.md``.

Per-aggregate order. ``sequence`` is the aggregate's last sequence plus one, computed in
the INSERT; the unique index on (aggregatetype, aggregateid, sequence) is the arbiter of
``ON CONFLICT DO NOTHING``. A second writer of the same aggregate therefore waits for the
first to finish (PostgreSQL waits on the conflicting row), then, if it committed, finds
nothing inserted and tries again with a new statement that sees it: the sequence stays
gap-free, and both ``txid`` and ``id`` grow with it, so ``(txid, id)`` order is sequence
order within an aggregate. Writers of different aggregates never wait for each other.
On SQLite the database write lock serialises writers, ``txid`` is 0 and order is ``id``.

The CloudEvent JSON is built by the database in the same INSERT (``json_object`` on SQLite,
``json_build_object`` on PostgreSQL), because only there is the new id known; one
statement per event, or one statement for any number of tombstones, whose payloads are
concatenated from parts JSON-encoded once per call (only id, sequence and key vary).
``emit_many`` on SQLite is the exception: under the database write lock the ids are known
in advance, so it builds the payloads itself (see :func:`_emit_many_sqlite`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import functools
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
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
    select,
    table,
    true,
)
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.orm import Session

from govern.errors import DatabaseError, InvalidEventError
from govern.events.models import OUTBOX_TABLE, OutboxEvent
from govern.events.schemas import Event
from govern.types.utc import utcnow

EVENT_TYPE = re.compile(r"govern(?:\.[a-z][a-z0-9_]*){2,}")
AGGREGATE_TYPE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
SOURCE = "/govern"
PG_ID_SEQUENCE = f"{OUTBOX_TABLE}_id_seq"

HOOKS_KEY = "govern.events.hooks"
PENDING_KEY = "govern.events.pending"
MAX_ATTEMPTS = 1000  # each retry follows another writer's commit to the same aggregate
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
    return aggregate_type, _aggregate_id(aggregate_id)


def _aggregate_id(aggregate_id: object) -> str:
    if isinstance(aggregate_id, bool) or not isinstance(aggregate_id, str | int | uuid.UUID):
        raise InvalidEventError("aggregate id must be a str, int or UUID")
    text = str(aggregate_id)
    if not 0 < len(text) <= 128 or not text.isprintable():
        raise InvalidEventError("aggregate id must be 1 to 128 printable characters")
    return text


def _check_subject_source(subject: object, source: object) -> None:
    if subject is not None and (not isinstance(subject, str) or not 0 < len(subject) <= 256):
        raise InvalidEventError("subject must be a non-empty string of at most 256 characters")
    if not isinstance(source, str) or not 0 < len(source) <= 256:
        raise InvalidEventError("source must be a non-empty URI-reference")


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


# Built once: json.dumps with non-default arguments builds an encoder on every call.
_DATA_ENCODER = json.JSONEncoder(default=json_default, separators=(",", ":"), allow_nan=False)
_HEAD_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _data_json(data: Mapping[str, Any] | None) -> str:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidEventError("event data must be a mapping of keys and categories")
    try:
        return _DATA_ENCODER.encode(data)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"event data is not JSON-serialisable ({exc})") from None


def cloudevent_time(stamp: dt.datetime) -> str:
    """RFC 3339 with a ``Z``, as CloudEvents' JSON format writes UTC times."""
    return stamp.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _table() -> Table:
    table = OutboxEvent.__table__
    assert isinstance(table, Table)
    return table


def _txt(value: Any) -> ColumnElement[str]:
    return cast(literal(value, Text), Text)


def _param(name: str) -> ColumnElement[str]:
    return cast(bindparam(name, type_=Text), Text)


def _build_insert(
    pg: bool, rows: Select[Any], payload_of: Callable[[Any], ColumnElement[Any]]
) -> Any:
    """``INSERT ... SELECT`` one outbox row per row of ``rows`` (which has a column ``aid``).

    Values come as bind parameters (``etype``, ``atype``, ``source``, ``subject``,
    ``ctime``, ``now``), so that one statement object, built once, serves every call
    (SQLAlchemy then reuses its compiled form). ``payload_of(s)`` builds the payload text
    from the CTE ``s`` (columns ``id``, ``seq``, ``aid`` and those of ``rows``):
    :func:`_cloudevent_payload` for :func:`emit`, one concatenation per row for tombstones.
    """
    o = _table().alias("o")
    t = _table()
    src = rows.subquery("src")
    same = (o.c.aggregatetype == _param("atype"), o.c.aggregateid == src.c.aid)
    source_rows: Any = src
    if pg:
        new_id: ColumnElement[Any] = func.nextval(PG_ID_SEQUENCE)
        # The aggregate's previous event, read once by one index probe (LATERAL): its
        # sequence + 1 is the new one, and its txid is the floor of the new txid, so
        # (txid, id) order is sequence order.
        prev = (
            select(o.c.sequence, o.c.txid)
            .where(*same)
            .order_by(o.c.sequence.desc())
            .limit(1)
            .lateral("prev")
        )
        source_rows = src.outerjoin(prev, true())
        seq: ColumnElement[Any] = func.coalesce(prev.c.sequence, 0) + 1
        txid: ColumnElement[Any] = func.greatest(
            cast(cast(func.pg_current_xact_id(), Text), BigInteger),
            func.coalesce(prev.c.txid, 0),
        )
    else:
        seq = select(func.coalesce(func.max(o.c.sequence), 0) + 1).where(*same).scalar_subquery()
        # AUTOINCREMENT's high-water mark, so pruned ids are never reused.
        base = (
            select(func.coalesce(func.max(_SQLITE_SEQUENCE.c.seq), 0))
            .where(_SQLITE_SEQUENCE.c.name == OUTBOX_TABLE)
            .scalar_subquery()
        )
        top = select(func.coalesce(func.max(o.c.id), 0)).scalar_subquery()
        # Ids in the order the rows are read (no sort: the rows are distinct aggregates, so
        # their relative order carries nothing, as with nextval on PostgreSQL).
        new_id = func.max(base, top) + func.row_number().over()
        txid = literal(0, BigInteger)
    s = (
        select(new_id.label("id"), seq.label("seq"), txid.label("tx"), *src.c)
        .select_from(source_rows)
        .cte("s")
        .prefix_with("MATERIALIZED")
    )
    return insert(t).from_select(
        ["id", "aggregatetype", "aggregateid", "type", "sequence", "txid", "created_at", "payload"],
        select(
            s.c.id,
            _param("atype"),
            s.c.aid,
            _param("etype"),
            s.c.seq,
            s.c.tx,
            bindparam("now", type_=t.c.created_at.type),
            payload_of(s),
        ),
    )


def _cloudevent_payload(pg: bool, with_subject: bool) -> Callable[[Any], ColumnElement[Any]]:
    """The CloudEvent JSON built by the database; ``data`` is the bound parameter ``data``."""
    json_object: Callable[..., Any] = func.json_build_object if pg else func.json_object

    def build(s: Any) -> ColumnElement[Any]:
        doc = bindparam("data", type_=Text)
        data = cast(cast(doc, Text), PG_JSON()) if pg else func.json(doc)
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
            data,
        ]
        payload = json_object(*[_txt(f) if isinstance(f, str) else f for f in fields])
        return cast(payload, Text) if pg else payload

    return build


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


_EMIT_STATEMENTS: dict[tuple[bool, bool], Any] = {}
_PG_EMIT_SQL: dict[tuple[type, bool], tuple[str, dict[str, Any]]] = {}
_ON_CONFLICT = " ON CONFLICT (aggregatetype, aggregateid, sequence) DO NOTHING RETURNING payload"


def _emit_statement(pg: bool, with_subject: bool) -> Any:
    key = (pg, with_subject)
    stmt = _EMIT_STATEMENTS.get(key)
    if stmt is None:
        rows = select(_param("aid").label("aid"))
        stmt = _build_insert(pg, rows, _cloudevent_payload(pg, with_subject))
        if not pg:
            stmt = stmt.returning(_table().c.payload)
        _EMIT_STATEMENTS[key] = stmt
    return stmt


def _pg_emit_sql(conn: Any, with_subject: bool) -> tuple[str, dict[str, Any]]:
    """The PostgreSQL emit as driver SQL with ``ON CONFLICT DO NOTHING``, compiled once.

    SQLAlchemy 2.0's PostgreSQL ``insert().on_conflict_do_nothing()`` cannot be cached, so
    it would be compiled again on every emit (several times the cost of the emit itself);
    the generic INSERT is compiled once per dialect here and the clause appended.
    """
    key = (type(conn.dialect), with_subject)
    found = _PG_EMIT_SQL.get(key)
    if found is None:
        compiled = _emit_statement(True, with_subject).compile(dialect=conn.dialect)
        found = (compiled.string + _ON_CONFLICT, dict(compiled.params))
        _PG_EMIT_SQL[key] = found
    return found


def _track(session: Session, payloads: list[str]) -> list[Event]:
    out = [Event.from_payload(p) for p in payloads]
    if HOOKS_KEY in session.info:
        # Filed under the innermost savepoint (or the root transaction): hooks move them up
        # when it is released and drop them when it rolls back.
        boundary = session.get_nested_transaction() or session.get_transaction()
        pending = session.info.setdefault(PENDING_KEY, {})
        pending.setdefault(boundary, []).extend(out)
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
    _check_subject_source(subject, source)
    return _emit_one(session, (type, aggregate_type, aid, subject, source, data_json))


def _emit_one(session: Session, row: EventRow) -> Event:
    """Write one validated event with the single-row statement (one round trip)."""
    type, aggregate_type, aid, subject, source, data_json = row
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    params = _params(type, aggregate_type, subject, source, utcnow())
    params.update(aid=aid, data=data_json)
    if not pg:
        result = conn.execute(_emit_statement(False, subject is not None), params)
        return _track(session, list(result.scalars()))[0]
    sql, defaults = _pg_emit_sql(conn, subject is not None)
    for _ in range(MAX_ATTEMPTS):
        payloads = [r[0] for r in conn.exec_driver_sql(sql, {**defaults, **params})]
        if payloads:
            return _track(session, list(payloads))[0]
        # PostgreSQL only: another transaction committed this aggregate's next sequence
        # while we waited on it; the next statement sees it and takes the one after.
    raise DatabaseError(
        f"could not append to aggregate {aggregate_type} after {MAX_ATTEMPTS} attempts: "
        "other transactions kept taking its next sequence"
    )


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
    params: Mapping[str, Any] | None = None,
) -> int:
    """Append a keys-only delete event for every row ``key_select`` picks; set-based.

    Call it in the same transaction, *before* the bulk ``DELETE`` it describes, with a
    select of the table's primary-key columns (in primary-key order) for the rows about
    to go, for example ``select(Order.id).where(Order.placed_at < cutoff)``. One
    ``INSERT ... SELECT`` writes every event; no row is loaded into Python.

    Each event's ``aggregate_type`` is the table name and ``aggregate_id`` the key
    (composite keys joined with ``:``); ``data`` is a Debezium-style envelope with
    ``op = "d"``, ``before`` holding only the keys, ``after = null`` and ``cause``.

    The statement is built once per (table, ``key_select``) and reused: a
    caller deleting often passes the same ``key_select`` object, written with
    ``bindparam()`` placeholders, and their values in ``params``.

    Args:
        session: the caller's session; never committed here.
        table: the governed table (or its mapped class) the rows belong to.
        key_select: a select of the primary-key columns of the rows to be deleted.
        cause: why the rows go, lowercase (e.g. ``erasure``, ``retention``).
        type: the event type (default ``govern.row.deleted``).
        params: values of ``key_select``'s bind parameters, if it has placeholders.

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
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    hooked = HOOKS_KEY in session.info
    stmt = _tombstone_statement(pg, tbl, key_select, hooked)
    now = utcnow()
    values = _params(type, aggregate_type, None, SOURCE, now)
    values.update(_tombstone_segments(tbl, type, aggregate_type, cause, now))
    values.update(params or {})
    if hooked:
        return len(_track(session, list(conn.execute(stmt, values).scalars())))
    if pg:
        # Counted by the server: fetching one id per row into Python cost more than the
        # rest of the client's work for the batch.
        return int(conn.execute(stmt, values).scalar_one())
    # its rowcount is -1 for a statement starting with WITH on SQLite; changes() has the count
    conn.execute(stmt, values)
    return int(conn.exec_driver_sql("SELECT changes()").scalar_one())


def _tombstone_segments(
    tbl: Table, type: str, aggregate_type: str, cause: str, now: dt.datetime
) -> dict[str, str]:
    """The constant parts of a tombstone's payload text, JSON-encoded once per call.

    The payload is the same CloudEvent :func:`emit` writes (same members, same order),
    built as one text concatenation per row: only the id, the key (JSON-quoted by the
    database) and the sequence vary by row. (``json_object`` / ``json_build_object`` per
    row, four of them nested, cost more than the rest of the INSERT on PostgreSQL.)
    """
    pk = list(tbl.primary_key.columns)
    domain = str(tbl.info.get("domain", "host"))
    enc = _HEAD_ENCODER.encode
    head = '{"specversion":"1.0","id":"'
    mid_source = (
        f'","source":{enc(SOURCE)},"type":{enc(type)},"time":{enc(cloudevent_time(now))},'
        '"datacontenttype":"application/json","partitionkey":'
    )
    mid_atype = f',"aggregatetype":{enc(aggregate_type)},"sequence":"'
    before_names = [f"{{{enc(pk[0].name)}:"] + [f",{enc(c.name)}:" for c in pk[1:]]
    tail = (
        f'}},"after":null,"op":"d","ts_ms":{int(now.timestamp() * 1000)},'
        f'"source":{{"name":"govern","table":{enc(tbl.name)},"domain":{enc(domain)}}},'
        f'"cause":{enc(cause)},"tombstone":true}}}}'
    )
    before_names[0] = '","data":{"before":' + before_names[0]
    segments = [head, mid_source, mid_atype, *before_names, tail]
    return {f"seg{i}": v for i, v in enumerate(segments)}


def _reads_own_keys(tbl: Table, key_select: Select[Any]) -> bool:
    """Whether ``key_select`` reads ``tbl``'s primary key from ``tbl`` alone (no join, no
    other FROM): each key then comes at most once, so no ``DISTINCT`` is needed."""
    froms = key_select.get_final_froms()
    cols = list(key_select.selected_columns)
    pk = list(tbl.primary_key.columns)
    return (
        len(froms) == 1
        and froms[0] is tbl
        and len(cols) == len(pk)
        and all(
            isinstance(c, Column) and c.table is tbl and c.name == p.name
            for c, p in zip(cols, pk, strict=True)
        )
    )


@functools.lru_cache(maxsize=256)
def _tombstone_statement(pg: bool, tbl: Table, key_select: Select[Any], hooked: bool) -> Any:
    """The ``INSERT ... SELECT`` of :func:`emit_tombstones`; built once, then reused.

    Keyed by the ``key_select`` object itself (by identity), so a caller that builds a new
    select on every call gets a new statement each time, as before; the cache is bounded.
    Everything that varies by call (type, cause, time) is a bind parameter.
    """
    pk = list(tbl.primary_key.columns)
    keys = key_select.subquery("keys")
    kcols = list(keys.c)
    if len(kcols) != len(pk) or not pk:
        raise InvalidEventError(
            f"key_select must select the {len(pk)} primary-key column(s) of {tbl.name}"
        )
    texts = [_key_text(k, pg, p) for k, p in zip(kcols, pk, strict=True)]
    aid: ColumnElement[str] = texts[0]
    for extra in texts[1:]:
        aid = aid.concat(":").concat(extra)
    quote = (lambda c: cast(func.to_json(c), Text)) if pg else func.json_quote
    # Each value JSON-quoted once: a single-column key's text is the aggregate id itself,
    # so "partitionkey" and "before" share one quoted value.
    quoted = [quote(aid).label("q")]
    if len(pk) > 1:
        quoted += [quote(t).label(f"q{i}") for i, t in enumerate(texts)]
    rows = select(aid.label("aid"), *quoted)
    if not _reads_own_keys(tbl, key_select):
        rows = rows.distinct()

    def payload_of(s: Any) -> ColumnElement[Any]:
        seg = [_param(f"seg{i}") for i in range(4 + len(pk))]
        keys = [s.c.q] if len(pk) == 1 else [s.c[f"q{i}"] for i in range(len(pk))]
        parts: list[ColumnElement[Any]] = [
            seg[0],
            cast(s.c.id, Text),
            seg[1],
            s.c.q,
            seg[2],
            cast(s.c.seq, Text),
        ]
        for i, key in enumerate(keys):
            parts += [seg[3 + i], key]
        parts.append(seg[3 + len(pk)])
        out = parts[0]
        for part in parts[1:]:
            out = out.op("||", return_type=Text)(part)
        return out

    # No ON CONFLICT here: rows are being deleted, so another transaction writing an event
    # for the same row at the same time is a real conflict; the unique index makes it
    # fail loudly (IntegrityError) instead of numbering the aggregate twice.
    stmt = _build_insert(pg, rows, payload_of)
    if hooked:
        return stmt.returning(_table().c.payload)
    if pg:
        # (psycopg reports -1 as the rowcount of an INSERT ... SELECT compiled with a WITH)
        written = stmt.returning(_table().c.id).cte("written")
        return select(func.count()).select_from(written)
    # No RETURNING on SQLite: fetching one id per row costs more than writing the row.
    return stmt


# ----------------------------------------------------------------------------- many at once

_EMIT_KEYS = frozenset({"type", "aggregate_type", "aggregate_id", "data", "subject", "source"})

# PostgreSQL: one INSERT ... SELECT for a whole batch: the events arrive as one JSON array of
# [type, aggregate type, aggregate id, subject, source, data], in order.
# Per-aggregate sequences continue from the outbox's last one for that aggregate and count
# up in input order (row_number over the batch), so they stay gap-free; ids follow input
# order. The payload is built by the database exactly as :func:`emit` builds it.
_MANY_PAYLOAD = (
    "{obj}('specversion', '1.0', 'id', CAST(id AS TEXT), 'source', source, 'type', etype, "
    "{subject}'time', :ctime, 'datacontenttype', 'application/json', 'partitionkey', aid, "
    "'aggregatetype', atype, 'sequence', CAST(seq AS TEXT), 'data', {data})"
)
_MANY_SEQ = (
    "coalesce((SELECT max(o.sequence) FROM {t} o WHERE o.aggregatetype = src.atype "
    "AND o.aggregateid = src.aid), 0) "
    "+ row_number() OVER (PARTITION BY src.atype, src.aid ORDER BY src.ord)"
)
_MANY_PG = "".join(
    (
        "WITH src AS (SELECT e.ord, e.value ->> 0 AS etype, e.value ->> 1 AS atype, ",
        "e.value ->> 2 AS aid, e.value ->> 3 AS subject, e.value ->> 4 AS source, ",
        "e.value -> 5 AS data ",
        "FROM json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS e(value, ord)), ",
        "s AS MATERIALIZED (SELECT src.*, ",
        _MANY_SEQ,
        " AS seq, ",
        # As emit: the writer's transaction id, never below the aggregate's previous event's,
        # so that (txid, id) order is sequence order and the relay never skips a row.
        "greatest(CAST(CAST(pg_current_xact_id() AS text) AS bigint), coalesce((SELECT o.txid ",
        "FROM {t} o WHERE o.aggregatetype = src.atype AND o.aggregateid = src.aid ",
        "ORDER BY o.sequence DESC LIMIT 1), 0)) AS tx FROM src ORDER BY src.ord), ",
        "n AS MATERIALIZED (SELECT nextval('{seq}') AS id, s.* FROM s) ",
        "INSERT INTO {t} (id, aggregatetype, aggregateid, type, sequence, txid, created_at, ",
        "payload) SELECT id, atype, aid, etype, seq, tx, :now, ",
        "CAST(CASE WHEN subject IS NULL THEN ",
        _MANY_PAYLOAD.format(obj="json_build_object", subject="", data="data"),
        " ELSE ",
        _MANY_PAYLOAD.format(obj="json_build_object", subject="'subject', subject, ", data="data"),
        " END AS text) FROM n ORDER BY id ",
        "ON CONFLICT (aggregatetype, aggregateid, sequence) DO NOTHING RETURNING {ret}",
    )
)
_MANY_STATEMENTS: dict[str, Any] = {}


def _many_statement(ret: str) -> Any:
    key = ret
    stmt = _MANY_STATEMENTS.get(key)
    if stmt is None:
        from sqlalchemy import text

        sql = _MANY_PG.format(t=OUTBOX_TABLE, seq=PG_ID_SEQUENCE, ret=ret)
        stmt = text(sql).bindparams(
            bindparam("rows", type_=Text),
            bindparam("ctime", type_=Text),
            bindparam("now", type_=_table().c.created_at.type),
        )
        _MANY_STATEMENTS[key] = stmt
    return stmt


def emit_many(session: Session, events: Iterable[Mapping[str, Any]]) -> int:
    r"""Append many CloudEvents to the outbox in one go; never commits.

    Each item holds :func:`emit`'s keyword arguments (``type``, ``aggregate_type``,
    ``aggregate_id``, and optionally ``data``, ``subject``, ``source``). The events get the
    same CloudEvents payload :func:`emit` writes, ids in the order given, and per-aggregate
    sequences that continue 1, 2, 3... without gaps (several events of one aggregate in a
    batch are numbered in the order given). Everything is validated before anything is
    written. Registered hooks see the events after commit, as with :func:`emit`.

    PostgreSQL: one ``INSERT ... SELECT`` (ids from the sequence, ``txid`` from the writing
    transaction). SQLite: the database write lock is taken first, then the id high-water mark
    and the batch's aggregates' last sequences are read and the rows, payloads included, are
    built here and written with multi-row ``INSERT``\ s (no JSON parsing in the database).

    Returns:
        The number of events written.

    Raises:
        InvalidEventError: any item is malformed (nothing is written).
    """
    return _emit_rows(session, _validated(events))


EventRow = tuple[str, str, str, str | None, str, str]
"""A validated event: type, aggregate type, aggregate id, subject, source, data as JSON text."""


def _validated(events: Iterable[Mapping[str, Any]]) -> list[EventRow]:
    rows: list[EventRow] = []
    types: set[str] = set()
    atypes: set[str] = set()
    for item in events:
        if not isinstance(item, Mapping) or not _EMIT_KEYS.issuperset(item):
            raise InvalidEventError(
                f"each event must be a mapping of {', '.join(sorted(_EMIT_KEYS))}"
            )
        try:
            etype, atype, aid_in = item["type"], item["aggregate_type"], item["aggregate_id"]
        except KeyError as exc:
            raise InvalidEventError(f"event without {exc.args[0]!r}") from None
        if etype not in types:
            types.add(validate_event_type(etype))
        if atype not in atypes:
            atypes.add(_aggregate(atype, "x")[0])
        aid = _aggregate_id(aid_in)
        subject, source = item.get("subject"), item.get("source", SOURCE)
        _check_subject_source(subject, source)
        rows.append((etype, atype, aid, subject, source, _data_json(item.get("data"))))
    return rows


def emit_rows(session: Session, rows: Sequence[EventRow]) -> int:
    """:func:`emit_many` for a service that builds its events' data JSON itself.

    Each row is ``(type, aggregate type, aggregate id, subject or None, source, data)``
    with ``data`` the JSON text of an object, written into the payload as it is (it must
    carry keys and categories only, as with :func:`emit`). Types and aggregate types are
    checked once per distinct value, ids, subjects and sources on every row; nothing is
    written if any is malformed. For batches whose data shares most of its text, this
    skips building and encoding a mapping per event.
    """
    seen: set[tuple[str, str]] = set()
    checked: list[EventRow] = []
    for row in rows:
        etype, atype, aid, subject, source, data = row
        if (etype, atype) not in seen:
            validate_event_type(etype)
            _aggregate(atype, "x")
            seen.add((etype, atype))
        if type(aid) is not str:
            raise InvalidEventError("aggregate id must be 1 to 128 printable characters")
        _aggregate_id(aid)
        _check_subject_source(subject, source)
        if not isinstance(data, str) or data[:1] != "{" or data[-1:] != "}":
            raise InvalidEventError("event data must be the JSON text of an object")
        checked.append(row)
    return _emit_rows(session, checked)


def _emit_rows(session: Session, rows: list[EventRow]) -> int:
    """Write validated rows (see :func:`emit_many`); one row goes as :func:`emit` writes it."""
    if not rows:
        return 0
    if len(rows) == 1:
        _emit_one(session, rows[0])
        return 1
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    now = utcnow()
    hooked = HOOKS_KEY in session.info
    if not pg:
        payloads = _emit_many_sqlite(conn, rows, now)
        if hooked:
            _track(session, payloads)
        return len(rows)
    # [type, aggregate type, aggregate id, subject, source, data]: data goes in as it is.
    parts = [f"{_HEAD_ENCODER.encode(r[:5])[:-1]},{r[5]}]" for r in rows]
    params = {"rows": f"[{','.join(parts)}]", "ctime": cloudevent_time(now)}
    params["now"] = now  # type: ignore[assignment]
    stmt = _many_statement("payload" if hooked else "id")
    written = _emit_many_pg(session, stmt, params, len(rows))
    if hooked:
        _track(session, sorted(written, key=lambda p: Event.from_payload(p).id))
    return len(written)


_STR = json.encoder.encode_basestring  # C, non-ASCII kept (as json_object does)
_SQLITE_LOCK = f"DELETE FROM {OUTBOX_TABLE} WHERE id < 0"  # noqa: S608  (a constant)
# The AUTOINCREMENT high-water mark, so that the ids of pruned rows are never reused.
_SQLITE_TOP = (
    "SELECT max(coalesce((SELECT max(seq) FROM sqlite_sequence WHERE name = ?), 0), "  # noqa: S608
    f"coalesce((SELECT max(id) FROM {OUTBOX_TABLE}), 0))"
)
_SQLITE_LAST = (
    f"SELECT aggregateid, max(sequence) FROM {OUTBOX_TABLE} "  # noqa: S608  (a constant)
    "WHERE aggregatetype = ? AND aggregateid IN (SELECT value FROM json_each(?)) "
    "GROUP BY aggregateid"
)
_SQLITE_COLUMNS = "id, aggregatetype, aggregateid, type, sequence, txid, created_at, payload"
_SQLITE_PER_INSERT = 30_000 // 8  # bind parameters per statement, under SQLite's 32,766


def _emit_many_sqlite(conn: Any, rows: list[EventRow], now: dt.datetime) -> list[str]:
    """The SQLite batch: ids, sequences and payloads computed here, under the write lock.

    The no-op ``DELETE`` takes the database's write lock before anything is read (a no-op
    when :func:`govern.db.write_transaction` or an earlier write already holds it), so no
    other writer can take an id or a sequence between the reads and the ``INSERT``; a
    transaction whose earlier reads are stale fails there (``SQLITE_BUSY_SNAPSHOT``) rather
    than number anything twice, and the unique index on (aggregatetype, aggregateid,
    sequence) stays the arbiter. The payload is the JSON ``json_object`` would build:
    the same keys in the same order, ``id`` and ``sequence`` as strings.
    """
    conn.exec_driver_sql(_SQLITE_LOCK)
    top = int(conn.exec_driver_sql(_SQLITE_TOP, (OUTBOX_TABLE,)).scalar_one())
    wanted: dict[str, set[str]] = {}
    for r in rows:
        wanted.setdefault(r[1], set()).add(r[2])
    last: dict[tuple[str, str], int] = {}
    for atype, aids in wanted.items():
        ordered = sorted(aids)
        for i in range(0, len(ordered), 20_000):
            found = conn.exec_driver_sql(_SQLITE_LAST, (atype, json.dumps(ordered[i : i + 20_000])))
            for aid, seq in found:
                last[atype, aid] = seq
    bind = _table().c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    created = bind(now) if bind is not None else now
    time_j = _STR(cloudevent_time(now))
    quoted: dict[str, str] = {}  # types, aggregate types, sources: a handful per batch
    payloads: list[str] = []
    values: list[Any] = []
    for n, (etype, atype, aid, subject, source, data) in enumerate(rows, start=top + 1):
        key = (atype, aid)
        seq = last[key] = last.get(key, 0) + 1
        q_type = quoted.get(etype) or quoted.setdefault(etype, _STR(etype))
        q_atype = quoted.get(atype) or quoted.setdefault(atype, _STR(atype))
        q_source = quoted.get(source) or quoted.setdefault(source, _STR(source))
        subj = "" if subject is None else f'"subject":{_STR(subject)},'
        payload = (
            f'{{"specversion":"1.0","id":"{n}","source":{q_source},"type":{q_type},{subj}'
            f'"time":{time_j},"datacontenttype":"application/json",'
            f'"partitionkey":{_STR(aid)},"aggregatetype":{q_atype},"sequence":"{seq}",'
            f'"data":{data}}}'
        )
        payloads.append(payload)
        values += (n, atype, aid, etype, seq, 0, created, payload)
    per = _SQLITE_PER_INSERT * 8
    for i in range(0, len(values), per):
        part = values[i : i + per]
        one = "(?, ?, ?, ?, ?, ?, ?, ?)"
        conn.exec_driver_sql(
            f"INSERT INTO {OUTBOX_TABLE} ({_SQLITE_COLUMNS}) VALUES "  # noqa: S608  (constants)
            + ", ".join([one] * (len(part) // 8)),
            tuple(part),
        )
    return payloads


def _emit_many_pg(session: Session, stmt: Any, params: dict[str, Any], n: int) -> list[Any]:
    """Run the batch under a savepoint; when a concurrent writer took one of its aggregates'
    next sequence (a row skipped by ``ON CONFLICT DO NOTHING``, after waiting for that
    writer), roll the whole batch back and run it again, so that every aggregate's events
    stay numbered in the order given."""
    for _ in range(MAX_ATTEMPTS):
        savepoint = session.begin_nested()
        written = list(session.connection().execute(stmt, params).scalars())
        if len(written) == n:
            savepoint.commit()
            return written
        savepoint.rollback()
    raise DatabaseError(
        f"could not append a batch of {n} events after {MAX_ATTEMPTS} attempts: other "
        "transactions kept taking the next sequence of its aggregates"
    )
