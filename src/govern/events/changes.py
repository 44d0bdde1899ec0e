"""Row-change events for the warehouse, shaped like Debezium's envelope; opt-in.

``track_changes(Session)`` makes every ORM flush of a governed table (one with
:func:`govern.datamap.governed` info, govern's or the host's) append one event per
inserted, updated or deleted row, in the same transaction::

    {"before": {...} | null, "after": {...} | null, "op": "c" | "u" | "d",
     "ts_ms": 1732700000000, "source": {"name": "govern", "table": "orders", ...}}

Personal columns never leave: their value is replaced by ``{"categories": [...]}``, so the
warehouse learns that the column exists (and, for updates, that it changed) but not what
it holds. Bulk ``DELETE`` statements bypass the ORM: call
:func:`govern.events.emit_tombstones` for those.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from govern.events.models import OUTBOX_TABLE, SINKS_TABLE
from govern.events.service import emit
from govern.types.utc import utcnow

EVENT_TYPES = {"c": "govern.row.created", "u": "govern.row.updated", "d": "govern.row.deleted"}
_TABLES_KEY = "govern.events.track_tables"
_SKIP = frozenset({OUTBOX_TABLE, SINKS_TABLE})


def track_changes(
    target: sessionmaker[Session] | Session, tables: Collection[str] | None = None
) -> None:
    """Emit a change event for each ORM insert, update and delete of governed tables.

    Args:
        target: a session factory (every session it makes) or one session.
        tables: only these table names (default: every governed table).
    """
    if isinstance(target, sessionmaker):
        info = dict(target.kw.get("info") or {})
        info[_TABLES_KEY] = None if tables is None else frozenset(tables)
        target.configure(info=info)
    else:
        target.info[_TABLES_KEY] = None if tables is None else frozenset(tables)
    if not event.contains(target, "after_flush", _after_flush):
        event.listen(target, "after_flush", _after_flush)


def _value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _value(value.value)
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if isinstance(value, dict | list):
        return value
    return str(value)


def _governed(table: Table, only: frozenset[str] | None) -> bool:
    if table.name in _SKIP or "owner" not in table.info:
        return False
    return only is None or table.name in only


def _row(state: Any, table: Table, which: str) -> dict[str, Any]:
    """Column values before or after the flush; personal columns as their categories."""
    mapper = state.mapper
    out: dict[str, Any] = {}
    for col in table.columns:
        cats = col.info.get("categories")
        if cats:
            out[col.name] = {"categories": list(cats)}
            continue
        prop = mapper.get_property_by_column(col)
        hist = state.attrs[prop.key].history
        if which == "before" and hist.deleted:
            out[col.name] = _value(hist.deleted[0])
        elif prop.key in state.dict:
            out[col.name] = _value(state.dict[prop.key])
        # an unloaded (expired, deferred) column is left out rather than guessed
    return out


def _changed(state: Any, table: Table) -> bool:
    mapper = state.mapper
    return any(
        state.attrs[mapper.get_property_by_column(c).key].history.has_changes()
        for c in table.columns
    )


def _key(state: Any) -> str:
    identity = state.identity or state.mapper.primary_key_from_instance(state.obj())
    return ":".join(str(v) for v in identity)


def _after_flush(session: Session, flush_context: Any) -> None:
    only = session.info.get(_TABLES_KEY)
    now = utcnow()
    ts_ms = int(now.timestamp() * 1000)
    work: list[tuple[str, Any]] = [("c", o) for o in session.new]
    work += [("u", o) for o in session.dirty if session.is_modified(o)]
    work += [("d", o) for o in session.deleted]
    for op, obj in work:
        state = inspect(obj)
        table = state.mapper.local_table
        if not isinstance(table, Table) or not _governed(table, only):
            continue
        if op == "u" and not _changed(state, table):
            continue
        before = None if op == "c" else _row(state, table, "before")
        after = None if op == "d" else _row(state, table, "after")
        emit(
            session,
            type=EVENT_TYPES[op],
            aggregate_type=table.name,
            aggregate_id=_key(state),
            data={
                "before": before,
                "after": after,
                "op": op,
                "ts_ms": ts_ms,
                "source": {
                    "name": "govern",
                    "table": table.name,
                    "domain": str(table.info.get("domain", "host")),
                },
            },
        )
