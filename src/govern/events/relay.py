"""The relay: drain the outbox, in id order, to each sink; status and replay.

Delivery is at least once. For each batch the relay reads events after the sink's
position, hands them to the sink, and only then moves the position (in its own short
transaction). A relay killed between the two re-sends that batch on its next run; it
never skips. Consumers deduplicate by the CloudEvents ``id`` (the outbox id).

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

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
                        name=name, position=0, delivered=0, updated_at=utcnow()
                    )
                )
        except IntegrityError:
            pass  # another relay made it first


def _acquire(engine: Engine, name: str, owner: str, lease: float) -> bool:
    now = utcnow()
    with engine.begin() as conn:
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


def _position(engine: Engine, name: str) -> tuple[int, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(EventSink.position, EventSink.lease_owner).where(EventSink.name == name)
        ).one()
        return int(row[0]), row[1]


def _read(engine: Engine, after: int, limit: int) -> list[OutboxRow]:
    o = OutboxEvent
    stmt = (
        select(o.id, o.aggregatetype, o.aggregateid, o.type, o.created_at, o.payload)
        .where(o.id > after)
        .order_by(o.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [OutboxRow(*r) for r in conn.execute(stmt).all()]


def _backlog(conn: Connection | Session, after: int) -> int:
    n = conn.execute(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.id > after))
    return int(n.scalar_one())


def _save(
    engine: Engine,
    name: str,
    owner: str,
    old: int,
    new: int,
    count: int,
    lease: float,
    error: str | None,
) -> bool:
    """Move the position from ``old`` to ``new`` if we still hold the lease; False if not."""
    now = utcnow()
    values: dict[str, object] = {
        "position": new,
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
                EventSink.name == name, EventSink.lease_owner == owner, EventSink.position == old
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
            st.run.position = position
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
        new = batch[taken - 1].id if taken else position
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
        st.run.position = new
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
                    st.run.position = _position(engine, st.name)[0]
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
            st.run.position = _position(engine, st.name)[0]
            st.run.backlog = _backlog(conn, st.run.position)
    return RelayReport(sinks=[st.run for st in states])


def status(session: Session, sinks: Mapping[str, SinkConfig]) -> CdcStatusReport:
    """Per configured sink: position, backlog, events delivered, last error and lease."""
    rows = {r.name: r for r in session.scalars(select(EventSink))}
    last = session.execute(select(func.max(OutboxEvent.id))).scalar_one()
    out = []
    for name, cfg in sorted(sinks.items()):
        row = rows.get(name)
        position = row.position if row else 0
        out.append(
            SinkStatus(
                sink=name,
                kind=cfg.kind,
                position=position,
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

    Only rewinds: moving a position forward would skip events, so it is refused.

    Raises:
        UnknownSinkError: the sink is not configured.
        UsageError: ``from_id`` is below 1 or after the sink's current position.
    """
    select_sinks(sinks, sink)
    if from_id < 1:
        raise UsageError("--from must be an outbox id of 1 or more")
    row = session.get(EventSink, sink)
    previous = row.position if row is not None else 0
    if from_id - 1 > previous:
        raise UsageError(
            f"sink {sink} is at position {previous}; replay only rewinds "
            f"(--from at most {previous + 1}), use `govern cdc relay` to go forward"
        )
    if row is None:
        row = EventSink(name=sink, position=0, delivered=0, updated_at=utcnow())
        session.add(row)
    row.position = from_id - 1
    row.updated_at = utcnow()
    session.flush()
    return ReplayResult(
        sink=sink,
        previous_position=previous,
        position=row.position,
        backlog=_backlog(session, row.position),
    )
