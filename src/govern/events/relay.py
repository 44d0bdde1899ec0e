"""The relay: drain the outbox, in id order, to each sink; status and replay.

Delivery is at least once. For each batch the relay reads events after the sink's
position, hands them to the sink, and only then moves the position (in its own short
transaction). A relay killed between the two re-sends that batch on its next run; it
never skips. Consumers deduplicate by the CloudEvents ``id`` (the outbox id).

Order is ``(txid, id)`` and a position is the pair of the last event taken. On PostgreSQL
the relay reads only rows whose ``txid`` is below the oldest transaction still open
(``pg_snapshot_xmin`` of the reading statement's own snapshot): those rows are final, and
any row committed later has a ``txid`` at or above that bound, so it sorts after them.
An open transaction therefore holds back the events of younger transactions until it
ends; it never makes the relay skip its own. On SQLite ``txid`` is 0: plain id order.

One relay at a time delivers to a sink: a lease row in ``event_sinks`` (owner, expiry)
is taken before delivering and renewed with every position update, and the update is
fenced on the owner and the old position, so a relay that lost its lease, or a sink that
``replay`` rewound meanwhile, never moves the position wrongly. This works the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Text,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from govern.db import write_connection
from govern.errors import GovernError, SinkError, UsageError
from govern.events.models import EventSink, OutboxEvent
from govern.events.schemas import (
    CdcStatusReport,
    RelayReport,
    ReplayResult,
    SinkConfig,
    SinkRun,
    SinkStatus,
)
from govern.events.sinks import OutboxRow, Sink, build_sink, select_sinks
from govern.types.utc import utcnow

log = logging.getLogger("govern.events.relay")

DEFAULT_BATCH = 1000
DEFAULT_LEASE_SECONDS = 30.0


def default_owner() -> str:
    """``host:pid:random``: unique per relay process."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _ensure_row(conn: Connection, name: str) -> None:
    exists = conn.execute(select(EventSink.name).where(EventSink.name == name)).first()
    if exists is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    EventSink.__table__.insert().values(  # type: ignore[attr-defined]
                        name=name, position=0, position_txid=0, delivered=0, updated_at=utcnow()
                    )
                )
        except IntegrityError:
            pass  # another relay made it first


def _acquire(engine: Engine, name: str, owner: str, lease: float) -> bool:
    now = utcnow()
    with write_connection(engine) as conn:  # reads (the sink row), then writes
        _ensure_row(conn, name)
        res = conn.execute(
            update(EventSink)
            .where(
                EventSink.name == name,
                or_(
                    EventSink.lease_owner.is_(None),
                    EventSink.lease_owner == owner,
                    EventSink.lease_until < now,
                ),
            )
            .values(lease_owner=owner, lease_until=now + dt.timedelta(seconds=lease))
        )
        return res.rowcount == 1


def _release(engine: Engine, name: str, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(EventSink)
            .where(EventSink.name == name, EventSink.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


Position = tuple[int, int]  # (txid, id) of the last event a sink took


def _position(engine: Engine, name: str) -> tuple[Position, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(EventSink.position_txid, EventSink.position, EventSink.lease_owner).where(
                EventSink.name == name
            )
        ).one()
        return (int(row[0]), int(row[1])), row[2]


def _after(position: Position, pg: bool) -> ColumnElement[bool]:
    if not pg:  # txid is always 0: plain ids, which SQLite seeks on directly
        return OutboxEvent.id > position[1]
    txid, eid = (literal(v, BigInteger) for v in position)
    return tuple_(OutboxEvent.txid, OutboxEvent.id) > tuple_(txid, eid)


def _is_pg(conn: Engine | Connection | Session) -> bool:
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    return bind.dialect.name == "postgresql"


def _read(engine: Engine, after: Position, limit: int) -> list[OutboxRow]:
    o = OutboxEvent
    pg = _is_pg(engine)
    stmt = (
        select(o.id, o.aggregatetype, o.aggregateid, o.type, o.created_at, o.payload, o.txid)
        .where(_after(after, pg))
        .order_by(*((o.txid, o.id) if pg else (o.id,)))
        .limit(limit)
    )
    if pg:
        # Only rows no open transaction can precede; same statement, same snapshot.
        xmin = func.pg_snapshot_xmin(func.pg_current_snapshot())
        stmt = stmt.where(o.txid < cast(cast(xmin, Text), BigInteger))
    with engine.connect() as conn:
        return [OutboxRow(*r) for r in conn.execute(stmt).all()]


def _backlog(conn: Connection | Session, after: Position) -> int:
    n = conn.execute(
        select(func.count()).select_from(OutboxEvent).where(_after(after, _is_pg(conn)))
    )
    return int(n.scalar_one())


def _save(
    engine: Engine,
    name: str,
    owner: str,
    old: Position,
    new: Position,
    count: int,
    lease: float,
    error: str | None,
) -> bool:
    """Move the position from ``old`` to ``new`` if we still hold the lease; False if not."""
    now = utcnow()
    values: dict[str, object] = {
        "position_txid": new[0],
        "position": new[1],
        "delivered": EventSink.delivered + count,
        "lease_until": now + dt.timedelta(seconds=lease),
        "updated_at": now,
    }
    if error is None:
        values["last_error"] = None
    else:
        values.update(last_error=error[:500], last_error_at=now)
    with engine.begin() as conn:
        res = conn.execute(
            update(EventSink)
            .where(
                EventSink.name == name,
                EventSink.lease_owner == owner,
                EventSink.position_txid == old[0],
                EventSink.position == old[1],
            )
            .values(**values)
        )
        return res.rowcount == 1


@dataclass
class _SinkState:
    name: str
    sink: Sink
    run: SinkRun
    retry_at: float = 0.0
    failures: int = 0
    held: bool = False
    done: bool = field(default=False)


def _drain(
    engine: Engine, st: _SinkState, owner: str, batch_size: int, lease: float, max_batches: int
) -> int:
    """Deliver up to ``max_batches`` batches; returns events delivered (raises nothing)."""
    total = 0
    for _ in range(max_batches):
        position, holder = _position(engine, st.name)
        if holder != owner:
            st.held = False
            st.run.skipped = "lease lost to another relay"
            return total
        batch = _read(engine, position, batch_size)
        if not batch:
            st.run.position = position[1]
            return total
        error: str | None = None
        taken = len(batch)
        try:
            st.sink.deliver(batch)
        except SinkError as exc:
            taken = max(0, min(exc.delivered, len(batch)))
            error = str(exc)
        except GovernError as exc:
            taken, error = 0, f"sink {st.name}: {exc}"
        new = (batch[taken - 1].txid, batch[taken - 1].id) if taken else position
        if not _save(engine, st.name, owner, position, new, taken, lease, error):
            # Rewound by replay (continue from there) or the lease was lost (stop).
            _, holder = _position(engine, st.name)
            if holder != owner:
                st.held = False
                st.run.skipped = "lease lost to another relay"
                return total
            continue
        total += taken
        st.run.delivered += taken
        st.run.position = new[1]
        if error is not None:
            st.run.error = error
            log.warning("%s", error)
            return total
        st.run.error = None
        if taken < batch_size:
            return total
    return total


def relay(
    engine: Engine,
    sinks: Mapping[str, SinkConfig],
    *,
    sink: str | None = None,
    follow: bool = False,
    batch_size: int = DEFAULT_BATCH,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    poll_interval: float = 1.0,
    owner: str | None = None,
    stop: threading.Event | None = None,
) -> RelayReport:
    """Deliver the outbox to the configured sinks (or the one named), at least once, in order.

    With ``follow=False`` each sink is drained once and the call returns; a sink that
    fails keeps its backlog and reports the error (``ok`` is false). With ``follow=True``
    the relay polls every ``poll_interval`` seconds, backs off exponentially from a failing
    sink, and returns when ``stop`` is set (or on KeyboardInterrupt).

    Raises:
        UnknownSinkError: ``sink`` is not configured.
        UsageError: a batch size or lease out of range.
    """
    chosen = select_sinks(sinks, sink)
    if not 1 <= batch_size <= 100_000:
        raise UsageError("batch size must be between 1 and 100000")
    if not 0.1 <= lease_seconds <= 3600:
        raise UsageError("lease must be between 0.1 and 3600 seconds")
    me = owner or default_owner()
    stop = stop or threading.Event()
    states = [
        _SinkState(n, build_sink(n, cfg), SinkRun(sink=n, delivered=0, position=0, backlog=0))
        for n, cfg in chosen.items()
    ]
    import time

    try:
        while True:
            moved = 0
            for st in states:
                if time.monotonic() < st.retry_at:
                    continue
                if not _acquire(engine, st.name, me, lease_seconds):
                    st.held = False
                    st.run.skipped = "another relay holds the lease"
                    st.run.position = _position(engine, st.name)[0][1]
                    continue
                st.held, st.run.skipped = True, None
                n = _drain(
                    engine, st, me, batch_size, lease_seconds, 1_000_000 if not follow else 50
                )
                moved += n
                if st.run.error is not None:
                    st.failures += 1
                    st.retry_at = time.monotonic() + min(60.0, poll_interval * 2**st.failures)
                else:
                    st.failures = 0
            if not follow or stop.is_set():
                break
            if moved == 0 and stop.wait(poll_interval):
                break
    except KeyboardInterrupt:
        if not follow:
            raise
    finally:
        for st in states:
            if st.held:
                _release(engine, st.name, me)
            st.sink.close()
    with engine.connect() as conn:
        for st in states:
            position = _position(engine, st.name)[0]
            st.run.position = position[1]
            st.run.backlog = _backlog(conn, position)
    return RelayReport(sinks=[st.run for st in states])


def status(session: Session, sinks: Mapping[str, SinkConfig]) -> CdcStatusReport:
    """Per configured sink: position, backlog, events delivered, last error and lease."""
    rows = {r.name: r for r in session.scalars(select(EventSink))}
    last = session.execute(select(func.max(OutboxEvent.id))).scalar_one()
    out = []
    for name, cfg in sorted(sinks.items()):
        row = rows.get(name)
        position = (row.position_txid, row.position) if row else (0, 0)
        out.append(
            SinkStatus(
                sink=name,
                kind=cfg.kind,
                position=position[1],
                backlog=_backlog(session, position),
                delivered=row.delivered if row else 0,
                last_error=row.last_error if row else None,
                last_error_at=row.last_error_at if row else None,
                lease_owner=row.lease_owner if row else None,
                lease_until=row.lease_until if row else None,
            )
        )
    return CdcStatusReport(outbox_last_id=int(last or 0), sinks=out)


def replay(
    session: Session, sinks: Mapping[str, SinkConfig], sink: str, from_id: int
) -> ReplayResult:
    """Rewind ``sink`` so that the next relay delivers again every event from ``from_id`` on.

    The sink goes back to just before the first, in delivery order, of the events whose
    id is ``from_id`` or more (on PostgreSQL that may re-send a few lower ids too: at
    least once). Only rewinds: moving a position forward would skip events, so it is
    refused.

    Raises:
        UnknownSinkError: the sink is not configured.
        UsageError: ``from_id`` is below 1 or after the sink's current position.
    """
    select_sinks(sinks, sink)
    if from_id < 1:
        raise UsageError("--from must be an outbox id of 1 or more")
    row = session.get(EventSink, sink)
    previous: Position = (row.position_txid, row.position) if row is not None else (0, 0)
    o = OutboxEvent
    first = session.execute(
        select(o.txid, o.id).where(o.id >= from_id).order_by(o.txid, o.id).limit(1)
    ).first()
    target: Position = (int(first[0]), int(first[1]) - 1) if first else (previous[0], from_id - 1)
    if target > previous:
        raise UsageError(
            f"sink {sink} is at position {previous[1]}; replay only rewinds "
            f"(--from {from_id} would skip events it has not taken), "
            "use `govern cdc relay` to go forward"
        )
    if row is None:
        row = EventSink(name=sink, position=0, position_txid=0, delivered=0, updated_at=utcnow())
        session.add(row)
    row.position_txid, row.position = target
    row.updated_at = utcnow()
    session.flush()
    return ReplayResult(
        sink=sink,
        previous_position=previous[1],
        position=row.position,
        backlog=_backlog(session, target),
    )
