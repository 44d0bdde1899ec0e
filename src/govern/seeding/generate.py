"""Large, realistic analytics datasets, fast: set-based inserts in batches.

Rows are built in Python from a seeded random generator and written with the driver's
bulk path (``executemany`` on SQLite, binary ``COPY`` on PostgreSQL). Values are what
their column types would bind: plain columns through the types' bind processors, and the
crypto-shredded ``properties`` sealed under each row's subject key exactly as an ORM
flush seals them (the type's own encoding, a fresh random nonce per value, associated
data naming the column), only grouped by subject with the few distinct documents encoded
once. What is skipped is the per-object ORM bookkeeping, which is what makes a million
rows take seconds. Memory stays bounded by the batch size.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from govern.errors import SeedError
from govern.seeding.schemas import GenerateResult

EVENT_TYPES: dict[str, float] = {
    "page_view": 30,
    "click": 15,
    "screen_view": 12,
    "scroll": 8,
    "search": 6,
    "feature_used": 6,
    "app_open": 5,
    "lesson_started": 4,
    "lesson_completed": 3,
    "add_to_cart": 3,
    "login": 2,
    "video_play": 2,
    "checkout_started": 1.2,
    "logout": 1,
    "error": 1,
    "purchase": 0.8,
    "share": 0.5,
    "signup": 0.3,
}
SECTIONS = ("home", "courses", "lesson", "community", "cart", "account", "help", "blog")
DEVICES = ("web", "ios", "android")
# Traffic by hour of day (UTC): quiet nights, busy evenings.
HOURLY = (2, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 10, 10, 9, 9, 9, 10, 12, 13, 12, 9, 6, 4)
COLUMNS = ("subject_id", "type", "occurred_at", "properties")  # no session: NULL
_COMBOS = len(SECTIONS) * 97 * len(DEVICES)  # every (section, page, device) appears
_SECONDS = 86_400


def _properties(k: int) -> dict[str, Any]:
    section = SECTIONS[k % len(SECTIONS)]
    return {"section": section, "path": f"/{section}/{k % 97}", "device": DEVICES[k % 3]}


def _processor(session: Session, column: str) -> Callable[[Any], Any]:
    from govern.domains.analytics import AnalyticsEvent

    dialect = session.get_bind().dialect
    proc = AnalyticsEvent.__table__.c[column].type._cached_bind_processor(dialect)
    return proc if proc is not None else (lambda v: v)


def _cacheable(column: str) -> bool:
    """Whether bind-processed values of a column may be reused for equal inputs.

    Only SQLAlchemy's own deterministic types qualify: a TypeDecorator (for example one
    that encrypts with a random nonce) is applied to every value separately.
    """
    from sqlalchemy import JSON, String

    from govern.domains.analytics import AnalyticsEvent

    return type(AnalyticsEvent.__table__.c[column].type) in (JSON, String)


def _sealer(
    session: Session, subjects: list[Any], subject_pool: list[Any]
) -> Callable[[list[int], list[int]], list[bytes]] | None:
    """For a crypto-shredded ``properties`` column: the sealed values of a batch.

    Given the rows' subject numbers (indexes into ``subject_pool``, sorted) and their
    seconds of the day, returns what the ORM would store for each row: the column type's
    own encoding of the row's properties, sealed under the subject's key with the column's
    associated data and a fresh random nonce per value. The few distinct property
    documents are encoded once; each run of one subject's rows is sealed with that
    subject's cached cipher (:meth:`govern.crypto.aead.Cipher.seal_many`). Subject keys
    are created (in this transaction) for subjects that have none yet, as a flush would.
    """
    from govern.domains.analytics import AnalyticsEvent
    from govern.types.shredded import _Shredded

    column_type = AnalyticsEvent.__table__.c["properties"].type
    if not isinstance(column_type, _Shredded):
        return None
    from govern.crypto.keyring import holder
    from govern.errors import KeyringNotBoundError
    from govern.keys import subject_ciphers

    keyring = holder(session.get_bind().dialect).keyring
    if keyring is None:
        raise KeyringNotBoundError(
            "analytics_events.properties is crypto-shredded: attach a keyring "
            "(govern.keys.attach) before generating events"
        )
    ciphers = subject_ciphers(session, keyring, subjects)
    p_subject = _processor(session, "subject_id")
    by_processed = {p_subject(s): ciphers[s] for s in subjects}
    ordered = [by_processed[k] for k in subject_pool]
    context = column_type.context_bytes()
    documents = [column_type.encode(_properties(k)) for k in range(_COMBOS)]
    of_second = [documents[x % _COMBOS] for x in range(_SECONDS)]

    def seal(who: list[int], secs: list[int]) -> list[bytes]:
        out: list[bytes] = []
        lo, n = 0, len(who)
        while lo < n:
            hi = bisect_right(who, who[lo], lo)
            out += ordered[who[lo]].seal_many([of_second[x] for x in secs[lo:hi]], context)
            lo = hi
        return out

    return seal


def generate_events(
    session: Session,
    count: int,
    *,
    seed: int = 0,
    days: int = 90,
    end: dt.datetime | None = None,
    batch: int = 50_000,
) -> GenerateResult:
    """Insert ``count`` analytics events spread over the ``days`` before ``end``.

    Events belong to the subjects already in the database (seed them first); types,
    hours and pages follow skewed, realistic distributions drawn from ``seed``. When the
    batch is at least as large as the table, the two composite indexes are dropped and
    rebuilt around the load (in the same transaction): building an index once is several
    times cheaper than updating it a million times.
    """
    from sqlalchemy import func

    from govern.domains.analytics import AnalyticsEvent
    from govern.domains.core import Subject

    if count < 0:
        raise SeedError("the number of events must be zero or more")
    if days < 1:
        raise SeedError("days must be at least 1")
    subjects = list(session.scalars(select(Subject.id).order_by(Subject.id).limit(100_000)))
    if count and not subjects:
        raise SeedError("no subjects to attribute events to: run `govern seed` first")
    t0 = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311  (synthetic data, not security)
    stop = end or dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = stop - dt.timedelta(days=days)
    p_subject = _processor(session, "subject_id")
    epoch0 = int(start.timestamp())
    p_props = _processor(session, "properties")
    p_type = _processor(session, "type")
    subject_pool = sorted(p_subject(s) for s in subjects)
    type_pool = [p_type(t) for t in EVENT_TYPES]
    cum_types = list(accumulate(EVENT_TYPES.values()))
    # As floats: the same draws as the integer weights (all below 2**53), and bisecting
    # 86,400 floats compares float to float, which is much cheaper than float to int.
    cum_secs = [float(c) for c in accumulate(w for w in HOURLY for _ in range(3600))]
    seconds = range(_SECONDS)
    cached = [p_props(_properties(k)) for k in range(_COMBOS)] if _cacheable("properties") else None
    seal = _sealer(session, subjects, subject_pool) if cached is None and count else None
    existing = session.scalar(select(func.count()).select_from(AnalyticsEvent)) or 0
    rebuild = count >= max(existing, 10_000)
    table: Table = AnalyticsEvent.__table__  # type: ignore[assignment]
    composite = [ix for ix in table.indexes if len(ix.columns) > 1]
    conn = session.connection()
    if rebuild:
        for ix in composite:
            ix.drop(conn)
    is_pg = conn.dialect.name == "postgresql"
    days_base = [epoch0 + d * 86400 for d in range(days)]
    done = 0
    while done < count:
        n = min(batch, count - done)
        # Columns are drawn independently, so sorting the subjects alone is the same as
        # sorting rows by subject: the (subject_id, occurred_at) index then grows in order,
        # and each subject's rows are one run sealed with that subject's cipher.
        who = sorted(rng.choices(range(len(subject_pool)), k=n))
        kinds = rng.choices(range(len(type_pool)), cum_weights=cum_types, k=n)
        days_ago = rng.choices(range(days), k=n)
        secs = rng.choices(seconds, cum_weights=cum_secs, k=n)
        stamps = [days_base[d] + x for d, x in zip(days_ago, secs, strict=True)]
        props: list[Any]
        if cached is not None:
            props = [cached[x % _COMBOS] for x in secs]
        elif seal is not None:
            props = seal(who, secs)
        else:
            props = [p_props(_properties(x % _COMBOS)) for x in secs]
        rows = zip(
            [subject_pool[w] for w in who],
            [type_pool[k] for k in kinds],
            stamps,
            props,
            strict=True,
        )
        _write(conn, rows, is_pg)
        done += n
    if rebuild:
        for ix in composite:
            ix.create(conn)
    return GenerateResult(table="analytics_events", rows=count, seconds=time.perf_counter() - t0)


def _write(conn: Any, rows: Iterable[tuple[Any, ...]], is_pg: bool) -> None:
    """Rows carry ``occurred_at`` as UTC epoch seconds (whole seconds by construction).

    The timestamp is the one value not passed through its column type: it is not personal
    data, and converting it in the database (SQLite) or from an integer (PostgreSQL)
    yields exactly what :class:`~govern.types.UTCDateTime` stores, at a fraction of the
    cost. A test reads generated rows back through the ORM to hold that promise.
    """
    raw = conn.connection.driver_connection
    cols = ", ".join(COLUMNS)
    if is_pg:
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY analytics_events ({cols}) FROM STDIN (FORMAT BINARY)") as cp,
        ):
            cp.write(_copy_binary(rows, raw.info.encoding))
        return
    cur = raw.cursor()
    try:
        cur.executemany(
            f"INSERT INTO analytics_events ({cols}) VALUES "  # noqa: S608
            "(?, ?, strftime('%Y-%m-%d %H:%M:%S.000000', ?, 'unixepoch'), ?)",
            rows,
        )
    finally:
        cur.close()


_PG_EPOCH = 946_684_800  # 2000-01-01T00:00:00Z, where PostgreSQL's timestamps count from
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # no flags, no header extension
_COPY_TRAILER = b"\xff\xff"


def _copy_binary(rows: Iterable[tuple[Any, ...]], encoding: str) -> bytearray:
    """PostgreSQL's binary ``COPY`` stream for generated rows.

    Built by hand because the rows are regular: a subject id (16 bytes), a short text, a
    timestamp and the sealed envelope. The field layouts are PostgreSQL's ``uuid_send``,
    ``textsend``, ``timestamptz_send`` (microseconds since 2000-01-01 UTC, a 64-bit
    integer) and ``byteasend``; the server checks every length. Subject and type prefixes
    are built once per distinct value.
    """
    import struct
    import uuid

    tail = struct.Struct(">iqi").pack  # timestamp length, microseconds, envelope length
    field = struct.Struct(">i").pack
    subjects: dict[Any, bytes] = {}
    types: dict[str, bytes] = {}
    buf = bytearray(_COPY_SIGNATURE)
    for subject, kind, stamp, envelope in rows:
        head = subjects.get(subject)
        if head is None:
            head = subjects[subject] = b"\x00\x04" + field(16) + uuid.UUID(str(subject)).bytes
        text = types.get(kind)
        if text is None:
            encoded = kind.encode(encoding)
            text = types[kind] = field(len(encoded)) + encoded
        buf += head
        buf += text
        buf += tail(8, (stamp - _PG_EPOCH) * 1_000_000, len(envelope))
        buf += envelope
    buf += _COPY_TRAILER
    return buf
