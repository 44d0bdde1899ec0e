"""Consent ledger services. Every function takes a Session and never commits.

Appends lock the subject's chain-head row (``SELECT ... FOR UPDATE`` on PostgreSQL;
SQLite serialises writers, use :func:`govern.db.write_transaction` there) so that the
chain stays linear under concurrency; the composite key ``(subject_ref, seq)`` refuses a
fork even if a caller bypasses the lock.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import itertools
import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from govern.consent import chain, locales, tcf
from govern.consent.models import (
    ChainHead,
    ConsentRecord,
    ConsentState,
    Notice,
    NoticeText,
    NoticeVersion,
    Purpose,
)
from govern.consent.schemas import (
    ALLOWED_REASONS,
    RECONSENT_REASONS,
    BatchDecision,
    Catalog,
    CatalogResult,
    CollectionMethod,
    ConsentDecision,
    ConsentEvent,
    ConsentIn,
    ConsentRecordOut,
    LegalBasis,
    NoticeIn,
    NoticeTextOut,
    NoticeVersionIn,
    NoticeVersionOut,
    PurposeIn,
    PurposeOut,
    Reason,
)
from govern.errors import (
    ConsentError,
    DuplicateIdempotencyKeyError,
    InvalidTimestampError,
    MissingLocaleError,
    UnknownNoticeError,
    UnknownPurposeError,
)
from govern.events.service import SOURCE as _SOURCE
from govern.events.service import EventRow
from govern.keys.schemas import ShredResult
from govern.types.utc import utcnow

CLOCK_SKEW = dt.timedelta(seconds=60)
"""How far in the future an event time may be (client clocks drift) before it is refused."""

_RECORDS = cast(Table, ConsentRecord.__table__)
_HEADS = cast(Table, ChainHead.__table__)
_STATE = cast(Table, ConsentState.__table__)

NEGATIVE = frozenset({"refused", "withdrawn", "revoked"})
_CHUNK = 2000


# ----------------------------------------------------------------------------- catalog


def _notice(session: Session, key: str) -> Notice:
    notice = session.scalar(select(Notice).where(Notice.key == key))
    if notice is None:
        raise UnknownNoticeError(f"unknown notice {key!r}")
    return notice


def add_notice(session: Session, data: NoticeIn) -> list[NoticeVersionOut]:
    """Create a notice and its versions; returns the versions added."""
    if session.scalar(select(Notice.id).where(Notice.key == data.key)) is not None:
        raise ConsentError(f"notice {data.key!r} already exists")
    fields = data.model_dump(exclude={"versions"})
    fields["default_locale"] = locales.normalise(data.default_locale)
    session.add(Notice(**fields))
    session.flush()
    return [add_notice_version(session, data.key, v) for v in data.versions]


def add_notice_version(
    session: Session, notice_key: str, data: NoticeVersionIn
) -> NoticeVersionOut:
    """Publish a new version of a notice; a material change makes earlier consents stale."""
    notice = _notice(session, notice_key)
    last = session.scalar(
        select(func.max(NoticeVersion.version)).where(NoticeVersion.notice_id == notice.id)
    )
    number = data.version if data.version is not None else (last or 0) + 1
    if number <= (last or 0):
        raise ConsentError(f"notice {notice_key!r} already has version {last}; versions only grow")
    published = _aware(data.published_at, "published_at") if data.published_at else utcnow()
    texts = {locales.normalise(loc): t for loc, t in data.texts.items()}
    if notice.default_locale not in texts:
        raise MissingLocaleError(
            f"notice {notice_key!r} v{number} needs a text in its default locale "
            f"{notice.default_locale}"
        )
    version = NoticeVersion(
        notice_id=notice.id,
        version=number,
        material_change=data.material_change,
        published_at=published,
    )
    session.add(version)
    session.flush()
    for loc, t in sorted(texts.items()):
        session.add(NoticeText(version_id=version.id, locale=loc, title=t.title, body=t.body))
    if data.material_change or notice.material_version is None:
        # The first version is what every consent is given against.
        notice.material_version = number
    session.flush()
    return NoticeVersionOut(
        notice=notice_key,
        version=number,
        material_change=data.material_change,
        published_at=published,
        locales=sorted(texts),
    )


def add_purpose(session: Session, data: PurposeIn) -> PurposeOut:
    """Create a purpose; its notice must exist."""
    if session.scalar(select(Purpose.id).where(Purpose.key == data.key)) is not None:
        raise ConsentError(f"purpose {data.key!r} already exists")
    notice = _notice(session, data.notice)
    fields = data.model_dump(exclude={"notice"})
    fields["legal_basis"] = data.legal_basis.value
    session.add(Purpose(**fields, notice_id=notice.id))
    session.flush()
    return _purpose_out(session, data.key)


def load_catalog(session: Session, catalog: Catalog) -> CatalogResult:
    """Add the notices, versions and purposes of a catalog that are not there yet.

    Existing notices gain the versions whose numbers they lack; existing purposes are left
    as they are (a purpose's meaning must not change under the consents given for it).
    """
    out = CatalogResult(notices_added=[], versions_added=[], purposes_added=[], unchanged=[])
    for n in catalog.notices:
        if session.scalar(select(Notice.id).where(Notice.key == n.key)) is None:
            added = add_notice(session, n)
            out.notices_added.append(n.key)
            out.versions_added += [f"{v.notice} v{v.version}" for v in added]
            continue
        have = set(
            session.scalars(
                select(NoticeVersion.version)
                .join(Notice, Notice.id == NoticeVersion.notice_id)
                .where(Notice.key == n.key)
            )
        )
        for v in n.versions:
            if v.version is not None and v.version in have:
                out.unchanged.append(f"{n.key} v{v.version}")
                continue
            added_v = add_notice_version(session, n.key, v)
            out.versions_added.append(f"{n.key} v{added_v.version}")
        out.unchanged.append(f"notice {n.key}")
    for p in catalog.purposes:
        if session.scalar(select(Purpose.id).where(Purpose.key == p.key)) is None:
            add_purpose(session, p)
            out.purposes_added.append(p.key)
        else:
            out.unchanged.append(f"purpose {p.key}")
    return out


def _purpose_out(session: Session, key: str) -> PurposeOut:
    row = session.execute(
        select(Purpose, Notice.key, Notice.material_version)
        .join(Notice, Notice.id == Purpose.notice_id)
        .where(Purpose.key == key)
    ).one()
    p = row[0]
    return PurposeOut(
        key=p.key,
        name=p.name,
        description=p.description,
        legal_basis=LegalBasis(p.legal_basis),
        data_categories=list(p.data_categories),
        retention_days=p.retention_days,
        consent_validity_days=p.consent_validity_days,
        sale_or_sharing=p.sale_or_sharing,
        third_parties=list(p.third_parties),
        notice=row[1],
        notice_version=_current_version(session, p.notice_id),
    )


def _current_version(session: Session, notice_id: int) -> int | None:
    return session.scalar(
        select(func.max(NoticeVersion.version)).where(NoticeVersion.notice_id == notice_id)
    )


def list_purposes(session: Session) -> list[PurposeOut]:
    """Every purpose, by key, with its notice's current version."""
    return [
        _purpose_out(session, k) for k in session.scalars(select(Purpose.key).order_by(Purpose.key))
    ]


def notice_text(
    session: Session, notice_key: str, locale: str | None = None, version: int | None = None
) -> NoticeTextOut:
    """The text to show: the version (default current) in the best locale of the fallback chain."""
    notice = _notice(session, notice_key)
    nv = _notice_version(session, notice, version)
    shown, text = _resolve_text(session, notice, nv, locale)
    return NoticeTextOut(
        notice=notice_key,
        version=nv.version,
        requested_locale=locale or notice.default_locale,
        locale=shown,
        title=text.title,
        body=text.body,
    )


def _notice_version(session: Session, notice: Notice, version: int | None) -> NoticeVersion:
    q = select(NoticeVersion).where(NoticeVersion.notice_id == notice.id)
    if version is None:
        q = q.order_by(NoticeVersion.version.desc()).limit(1)
    else:
        q = q.where(NoticeVersion.version == version)
    nv = session.scalar(q)
    if nv is None:
        which = "any version" if version is None else f"version {version}"
        raise UnknownNoticeError(f"notice {notice.key!r} has no {which}")
    return nv


def _resolve_text(
    session: Session, notice: Notice, nv: NoticeVersion, locale: str | None
) -> tuple[str, NoticeText]:
    texts = {
        t.locale: t
        for t in session.scalars(select(NoticeText).where(NoticeText.version_id == nv.id))
    }
    for cand in locales.chain(locale or notice.default_locale, notice.default_locale):
        if cand in texts:
            return cand, texts[cand]
    raise MissingLocaleError(
        f"notice {notice.key!r} v{nv.version} has no text for {locale!r} nor any fallback"
    )


# ----------------------------------------------------------------------------- appending


@dataclass(frozen=True)
class _PurposeInfo:
    id: int
    key: str
    legal_basis: str
    validity_days: int | None
    notice_id: int
    notice_key: str
    default_locale: str
    controller: str
    sale_or_sharing: bool


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTimestampError(f"{name} has no timezone; give an aware timestamp (…+00:00)")
    return value.astimezone(dt.UTC)


def _purposes(session: Session, keys: Iterable[str]) -> dict[str, _PurposeInfo]:
    wanted = sorted(set(keys))
    rows = session.execute(
        select(
            Purpose.id,
            Purpose.key,
            Purpose.legal_basis,
            Purpose.consent_validity_days,
            Purpose.notice_id,
            Notice.key,
            Notice.default_locale,
            Notice.controller,
            Purpose.sale_or_sharing,
        )
        .join(Notice, Notice.id == Purpose.notice_id)
        .where(Purpose.key.in_(wanted))
    ).all()
    found = {r[1]: _PurposeInfo(*r) for r in rows}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise UnknownPurposeError(f"unknown purpose {missing[0]!r}")
    return found


@dataclass
class _Prepared:
    item: ConsentIn
    purpose: _PurposeInfo
    notice_version_id: int
    notice_version: int
    locale: str
    occurred_at: dt.datetime
    expires_at: dt.datetime | None


class _NoticeCache:
    """Notice versions and their locales, looked up once per batch."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.versions: dict[tuple[int, int | None], tuple[int, int]] = {}
        self.locales: dict[int, set[str]] = {}
        self.resolved: dict[tuple[int, str | None], str] = {}

    def version(self, p: _PurposeInfo, number: int | None) -> tuple[int, int]:
        key = (p.notice_id, number)
        if key not in self.versions:
            q = select(NoticeVersion.id, NoticeVersion.version).where(
                NoticeVersion.notice_id == p.notice_id
            )
            if number is None:
                q = q.order_by(NoticeVersion.version.desc()).limit(1)
            else:
                q = q.where(NoticeVersion.version == number)
            row = self.session.execute(q).first()
            if row is None:
                which = "any version" if number is None else f"version {number}"
                raise UnknownNoticeError(f"notice {p.notice_key!r} has no {which}")
            self.versions[key] = (row[0], row[1])
        return self.versions[key]

    def locale(self, p: _PurposeInfo, version_id: int, number: int, wanted: str | None) -> str:
        key = (version_id, wanted)
        shown = self.resolved.get(key)
        if shown is None:
            shown = self.resolved[key] = self._locale(p, version_id, number, wanted)
        return shown

    def _locale(self, p: _PurposeInfo, version_id: int, number: int, wanted: str | None) -> str:
        if version_id not in self.locales:
            self.locales[version_id] = set(
                self.session.scalars(
                    select(NoticeText.locale).where(NoticeText.version_id == version_id)
                )
            )
        have = self.locales[version_id]
        for cand in locales.chain(wanted or p.default_locale, p.default_locale):
            if cand in have:
                return cand
        raise MissingLocaleError(
            f"notice {p.notice_key!r} v{number} has no text for {wanted!r} nor any fallback"
        )


def _prepare(session: Session, items: Sequence[ConsentIn], now: dt.datetime) -> list[_Prepared]:
    purposes = _purposes(session, (i.purpose for i in items))
    notices = _NoticeCache(session)
    keys = [i.idempotency_key for i in items if i.idempotency_key is not None]
    if len(keys) != len(set(keys)):
        raise DuplicateIdempotencyKeyError("the same idempotency key appears twice in one batch")
    for part in _chunks(keys):
        if session.scalar(
            select(ConsentRecord.record_id).where(ConsentRecord.idempotency_key.in_(part)).limit(1)
        ):
            raise DuplicateIdempotencyKeyError("idempotency key already used by an earlier record")
    out = []
    for item in items:
        subj = item.subject
        if "@" in subj or subj != subj.strip() or not subj.isprintable():
            raise ConsentError(
                "subject must be a pseudonymous reference (no e-mail address, no outer spaces)"
            )
        p = purposes[item.purpose]
        occurred = _aware(item.occurred_at, "occurred_at") if item.occurred_at else now
        if occurred > now + CLOCK_SKEW:
            raise InvalidTimestampError("occurred_at is in the future")
        expires = _aware(item.expires_at, "expires_at") if item.expires_at else None
        if expires is not None and expires <= occurred:
            raise InvalidTimestampError("expires_at must be after occurred_at")
        if expires is None and item.event is ConsentEvent.GIVEN and p.validity_days:
            expires = occurred + dt.timedelta(days=p.validity_days)
        if item.tcf_string is not None:
            tcf.validate(item.tcf_string)
        nv_id, nv = notices.version(p, item.notice_version)
        loc = notices.locale(p, nv_id, nv, item.locale)
        out.append(_Prepared(item, p, nv_id, nv, loc, occurred, expires))
    return out


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


# ----------------------------------------------------------------------------- set-based writes

_MAX_PARAMS = 30_000  # below SQLite's 32,766 and PostgreSQL's 65,535 bind parameters

_RECORD_COLUMNS = (
    "subject_ref", "seq", "record_id", "purpose_id", "event", "notice_version_id", "locale",
    "legal_basis", "method", "jurisdiction", "controller", "occurred_at", "recorded_at",
    "expires_at", "tcf_string", "idempotency_key", "prev_hash", "hash", "subject_id",
    "source_ip", "user_agent",
)  # fmt: skip
_STATE_COLUMNS = (
    "subject_ref", "purpose_id", "status", "seq", "record_id", "occurred_at", "expires_at",
    "notice_version",
)  # fmt: skip
_HEAD_COLUMNS = ("subject_ref", "seq", "hash", "checkpointed_seq", "subject_id")
# The latest decision by event time wins; a later append of the same subject always has a
# higher sequence, so an equal time also wins (latest by time, then append order).
_STATE_CONFLICT = (
    "ON CONFLICT (subject_ref, purpose_id) DO UPDATE SET status = excluded.status, "
    "seq = excluded.seq, record_id = excluded.record_id, occurred_at = excluded.occurred_at, "
    "expires_at = excluded.expires_at, notice_version = excluded.notice_version "
    "WHERE excluded.occurred_at >= consent_state.occurred_at"
)
_HEAD_CONFLICT = (
    "ON CONFLICT (subject_ref) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
    "subject_id = excluded.subject_id"
)


def _same(value: Any) -> Any:
    return value


class _Binder:
    """Turns Python values into what the driver stores, with the columns' own bind processors.

    The set-based statements go to the driver directly (no per-row SQLAlchemy work), so the
    processing SQLAlchemy would do (UUIDs and UTC timestamps on SQLite) is applied here, once
    per distinct value.
    """

    def __init__(self, session: Session, table: Table, columns: Sequence[str]) -> None:
        dialect = session.get_bind().dialect
        self.procs: list[tuple[int, Any, dict[Any, Any] | None]] = []
        for i, name in enumerate(columns):
            typ = table.c[name].type
            if name in ("source_ip", "user_agent"):
                continue  # already sealed bytes
            proc = typ.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                # Timestamps repeat within a batch (memoised); ids do not.
                self.procs.append((i, proc, {} if name.endswith("_at") else None))

    @staticmethod
    def column(session: Session, table: Table, name: str) -> Any:
        """The bind function of one column (``None`` passes through), for values bound once."""
        dialect = session.get_bind().dialect
        proc = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if proc is None:
            return _same
        return lambda v: None if v is None else proc(v)

    def row(self, values: list[Any]) -> list[Any]:
        for i, proc, memo in self.procs:
            v = values[i]
            if v is None:
                continue
            if memo is None:
                values[i] = proc(v)
                continue
            out = memo.get(v)
            if out is None:
                out = memo[v] = proc(v)
            values[i] = out
        return values


def _insert_rows(
    session: Session, table: str, columns: Sequence[str], rows: list[list[Any]], tail: str = ""
) -> None:
    """Multi-row ``INSERT ... VALUES (...), (...)`` (plus ``tail``), chunked under the limits."""
    conn = session.connection()
    ph = "%s" if conn.dialect.name == "postgresql" else "?"
    one = "(" + ", ".join([ph] * len(columns)) + ")"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608  (table and columns are constants)
    per = max(1, _MAX_PARAMS // len(columns))
    for i in range(0, len(rows), per):
        part = rows[i : i + per]
        flat = tuple(itertools.chain.from_iterable(part))
        conn.exec_driver_sql(head + ", ".join([one] * len(part)) + tail, flat)


def _read_heads(
    session: Session, subjects: list[str]
) -> dict[str, tuple[int, str | None, uuid.UUID | None]]:
    """The chain heads of ``subjects``, locked for the rest of the transaction.

    PostgreSQL: missing heads are created, then all of the batch's heads are locked with one
    ``SELECT ... ORDER BY subject_ref FOR UPDATE`` (a fixed order, so no deadlocks). SQLite:
    :func:`govern.db.write_transaction` already holds the database's write lock
    (``BEGIN IMMEDIATE``); one read suffices. Subjects without a head start at ``(0, None)``.
    """
    conn = session.connection()
    raw: list[Any] = []
    if conn.dialect.name == "postgresql":
        _insert_rows(
            session,
            "consent_chain_heads",
            ("subject_ref", "seq", "checkpointed_seq"),
            [[s, 0, 0] for s in subjects],
            " ON CONFLICT DO NOTHING",
        )
        raw = [
            *conn.exec_driver_sql(
                "SELECT subject_ref, seq, hash, subject_id FROM consent_chain_heads "
                "WHERE subject_ref = ANY(%s) ORDER BY subject_ref FOR UPDATE",
                (subjects,),
            )
        ]
    else:
        for part in _chunks(subjects, 20_000):
            raw += conn.exec_driver_sql(
                "SELECT subject_ref, seq, hash, subject_id FROM consent_chain_heads "
                "WHERE subject_ref IN (SELECT value FROM json_each(?))",
                (json.dumps(list(part)),),
            ).all()
    out: dict[str, tuple[int, str | None, uuid.UUID | None]] = dict.fromkeys(
        subjects, (0, None, None)
    )
    for s, seq, h, sid in raw:
        out[s] = (seq, h, _uuid(sid))
    return out


SUBJECT_KEY_NAMESPACE = uuid.UUID("4c0e51a7-7a3e-5d1b-9f0c-60e3a5c0de04")
"""Namespace of :func:`key_subject_id` (a fixed UUID: the derivation must never change)."""


def key_subject_id(subject_ref: str) -> uuid.UUID:
    """The key owner used for a subject reference when no govern ``subject_id`` is given.

    ``uuid5(SUBJECT_KEY_NAMESPACE, subject_ref)``: a host without a ``subjects`` row for the
    person can still crypto-shred the ledger's IPs and user agents, with
    ``govern.keys.shred_subject(session, key_subject_id(ref), ...)`` or
    :func:`shred_subject`.
    """
    return uuid.uuid5(SUBJECT_KEY_NAMESPACE, subject_ref)


def _owner(item: ConsentIn, bound: uuid.UUID | None, sealing: bool) -> uuid.UUID | None:
    if item.subject_id is not None and bound is not None and item.subject_id != bound:
        raise ConsentError(
            "subject_id differs from the one this subject's consent chain is sealed under"
        )
    if bound is not None:
        return bound
    if item.subject_id is not None:
        return item.subject_id
    return key_subject_id(item.subject) if sealing else None


def _sealers(session: Session, owners: set[uuid.UUID]) -> Any:
    """Each owner's shredding cipher (keys created on first use, in this transaction)."""
    from govern.crypto.keyring import bound_keyring
    from govern.keys.service import subject_ciphers

    keyring = bound_keyring(session.get_bind().dialect, "consent_records", "source_ip")
    return subject_ciphers(session, keyring, owners)


_OUT_FIELDS = frozenset(ConsentRecordOut.model_fields)
_set_attr = object.__setattr__


def _record_out_fast(fields: dict[str, Any]) -> ConsentRecordOut:
    """``model_construct`` minus its per-field walk: every field is given and already valid.

    Appends build thousands of these per batch; this sets exactly what ``model_construct``
    sets (a test compares the two).
    """
    assert len(fields) == len(_OUT_FIELDS)  # the caller's literal names exactly these
    out = ConsentRecordOut.__new__(ConsentRecordOut)
    _set_attr(out, "__dict__", fields)
    _set_attr(out, "__pydantic_fields_set__", set(fields))
    _set_attr(out, "__pydantic_extra__", None)
    _set_attr(out, "__pydantic_private__", None)
    return out


def append_many(session: Session, items: Sequence[ConsentIn]) -> list[ConsentRecordOut]:
    """Append decisions in order: hash-chained, the projection updated, in the caller's transaction.

    All items are validated before anything is written; any bad item raises a
    :class:`~govern.errors.ConsentError` and nothing is appended. Set-based: one read of the
    batch's chain heads (locked), then one multi-row statement each for the records, the
    heads, the projection (an upsert that keeps the latest decision) and the outbox events.

    A source IP or user agent is sealed under the crypto-shredding key of the chain's key
    owner: the item's ``subject_id`` (a govern ``subjects.id``), else the owner the chain
    already has, else :func:`key_subject_id` of the reference. The hash covers the SHA-256
    of the sealed bytes, so shredding the owner's key leaves the chain verifiable.
    """
    return _append(session, items, want_records=True)


def append_bulk(session: Session, items: Sequence[ConsentIn]) -> int:
    """:func:`append_many` for bulk imports: the same records, checks, chain, projection and
    events, but only the number appended is returned (no result object per record)."""
    _append(session, items, want_records=False)
    return len(items)


class _GcPause:
    """Pauses Python's cyclic garbage collector while large batches are built, thread-safely.

    A batch allocates a few objects per record and holds them until it is written, so the
    collector would promote them and run full collections over the host's whole heap
    (measured: about a quarter of an append's CPU time). Nothing in a batch forms
    reference cycles; reference counting frees it all. The first batch to enter pauses the
    collector if it was enabled; the last to leave enables it again (a host that runs with
    it disabled keeps it disabled). A host thread that itself calls ``gc.disable()`` while
    another thread's append runs will find the collector enabled again when that append ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._paused = False

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0 and gc.isenabled():
                gc.disable()
                self._paused = True
            self._users += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._paused:
                self._paused = False
                gc.enable()


_GC_PAUSE = _GcPause()
GC_PAUSE_MIN_BATCH = 100
"""Batches of at least this many records pause the collector; smaller ones leave it be."""


def _append(
    session: Session, items: Sequence[ConsentIn], *, want_records: bool
) -> list[ConsentRecordOut]:
    if not items:
        return []
    if len(items) < GC_PAUSE_MIN_BATCH:  # a handful of records: nothing worth pausing for
        return _append_batch(session, items, want_records=want_records)
    with _GC_PAUSE:
        return _append_batch(session, items, want_records=want_records)


def _append_batch(
    session: Session, items: Sequence[ConsentIn], *, want_records: bool
) -> list[ConsentRecordOut]:
    now = utcnow()
    prepared = _prepare(session, items, now)
    subjects = sorted({p.item.subject for p in prepared})
    heads = _read_heads(session, subjects)
    owners: dict[str, uuid.UUID | None] = {s: h[2] for s, h in heads.items()}
    for p in prepared:
        item = p.item
        sealing = item.source_ip is not None or item.user_agent is not None
        owners[item.subject] = _owner(item, owners[item.subject], sealing)
    ciphers: Any = {}
    wanted = {
        owners[p.item.subject]
        for p in prepared
        if p.item.source_ip is not None or p.item.user_agent is not None
    }
    if wanted:
        ciphers = _sealers(session, {o for o in wanted if o is not None})
    ctx_ip = cast(Any, _RECORDS.c.source_ip.type).context_bytes()
    ctx_ua = cast(Any, _RECORDS.c.user_agent.type).context_bytes()

    links = {s: (h[0], h[1]) for s, h in heads.items()}
    records: list[list[Any]] = []
    new_state: dict[tuple[str, int], tuple[dt.datetime, list[Any]]] = {}
    outs: list[ConsentRecordOut] = []
    events: list[EventRow] = []
    etype = {e: f"govern.consent.{e.value}" for e in ConsentEvent}
    bases = {b.value: b for b in LegalBasis}
    # What records of a batch share (the canonical form after the record id, the event's
    # constant data), built once per distinct combination.
    tails: dict[tuple[Any, ...], tuple[str, Any, Any, Any, Any, str]] = {}
    # Values bound once with the columns' own processors (UUIDs, UTC times on SQLite); the
    # statements go to the driver directly.
    bind_rid = _Binder.column(session, _RECORDS, "record_id")
    bind_owner = _Binder.column(session, _RECORDS, "subject_id")
    bind_time = {
        (t, c): _Binder.column(session, t, c)
        for t in (_RECORDS, _STATE)
        for c in ("occurred_at", "expires_at")
    }
    bound_now = _Binder.column(session, _RECORDS, "recorded_at")(now)
    bound_owners = {s: bind_owner(o) for s, o in owners.items()}
    for p in prepared:
        item = p.item
        subject = item.subject
        seq, prev = links[subject]
        seq += 1
        rid = uuid.uuid4()
        rid_s = str(rid)
        owner = owners[subject]
        ip_env = ua_env = None
        if item.source_ip is not None or item.user_agent is not None:
            cipher = ciphers[owner]
            if item.source_ip is not None:
                ip_env = cipher.seal(item.source_ip.encode(), ctx_ip)
            if item.user_agent is not None:
                ua_env = cipher.seal(item.user_agent.encode("utf-8", "surrogatepass"), ctx_ua)
        purpose = p.purpose
        event = item.event.value
        method = item.method.value
        sealed = chain.sealed_digest(owner, ip_env, ua_env)
        key_t = (purpose.id, event, p.notice_version, p.locale, method, item.jurisdiction,
                 p.occurred_at, p.expires_at, item.tcf_string, item.idempotency_key,
                 sealed)  # fmt: skip
        shared = tails.get(key_t)
        if shared is None:
            tail = chain.canonical_tail(
                purpose=purpose.key,
                event=event,
                notice=purpose.notice_key,
                notice_version=p.notice_version,
                locale=p.locale,
                legal_basis=purpose.legal_basis,
                method=method,
                jurisdiction=item.jurisdiction,
                controller=purpose.controller,
                occurred_at=p.occurred_at,
                recorded_at=now,
                expires_at=p.expires_at,
                tcf_string=item.tcf_string,
                idempotency_key=item.idempotency_key,
                sealed_digest=sealed,
            )
            shared = tails[key_t] = (
                tail,
                bind_time[_RECORDS, "occurred_at"](p.occurred_at),
                bind_time[_RECORDS, "expires_at"](p.expires_at),
                bind_time[_STATE, "occurred_at"](p.occurred_at),
                bind_time[_STATE, "expires_at"](p.expires_at),
                _event_middle(p, event, method),
            )
        tail, r_occ, r_exp, s_occ, s_exp, middle = shared
        b_rid = bind_rid(rid)
        digest = chain.link(chain.canonical_join(subject, seq, rid_s, tail), prev)
        links[subject] = (seq, digest)
        records.append(
            [subject, seq, b_rid, purpose.id, event, p.notice_version_id, p.locale,
             purpose.legal_basis, method, item.jurisdiction, purpose.controller,
             r_occ, bound_now, r_exp, item.tcf_string, item.idempotency_key, prev,
             digest, bound_owners[subject], ip_env, ua_env]
        )  # fmt: skip
        key = (subject, purpose.id)
        current = new_state.get(key)
        if current is None or p.occurred_at >= current[0]:
            new_state[key] = (p.occurred_at, [subject, purpose.id, event, seq, b_rid, s_occ,
                              s_exp, p.notice_version])  # fmt: skip
        if want_records:
            outs.append(
                _record_out_fast(
                    {
                        "record_id": rid,
                        "subject": subject,
                        "seq": seq,
                        "purpose": purpose.key,
                        "event": item.event,
                        "notice": purpose.notice_key,
                        "notice_version": p.notice_version,
                        "locale": p.locale,
                        "legal_basis": bases[purpose.legal_basis],
                        "method": item.method,
                        "jurisdiction": item.jurisdiction,
                        "controller": purpose.controller,
                        "occurred_at": p.occurred_at,
                        "recorded_at": now,
                        "expires_at": p.expires_at,
                        "tcf_string": item.tcf_string,
                        "idempotency_key": item.idempotency_key,
                        "prev_hash": prev,
                        "hash": digest,
                        "subject_id": owner,
                        "source_ip": item.source_ip,
                        "user_agent": item.user_agent,
                    }
                )
            )
        # The event's data, as _EVENT_DATA's encoder writes it (a test compares the two).
        events.append(
            (etype[item.event], "consent.subject", subject, None, _SOURCE,
             f'{{"record_id":"{rid_s}","seq":{seq},{middle},"hash":"{digest}"}}')
        )  # fmt: skip
    try:
        # No savepoint: a refused insert aborts the caller's transaction, which rolls back.
        _insert_rows(session, "consent_records", _RECORD_COLUMNS, records)
    except IntegrityError as exc:
        if "idempotency_key" in str(exc.orig):
            raise DuplicateIdempotencyKeyError(
                "idempotency key already used by an earlier record"
            ) from None
        raise
    head_binder = _Binder(session, _HEADS, _HEAD_COLUMNS)
    _insert_rows(
        session,
        "consent_chain_heads",
        _HEAD_COLUMNS,
        [head_binder.row([s, links[s][0], links[s][1], 0, owners[s]]) for s in subjects],
        " " + _HEAD_CONFLICT,
    )
    _insert_rows(
        session,
        "consent_state",
        _STATE_COLUMNS,
        [r for _, r in new_state.values()],
        " " + _STATE_CONFLICT,
    )
    _after_append(session, events)
    return outs


@functools.lru_cache(maxsize=4096)
def _iso(value: dt.datetime) -> str:
    return value.isoformat()  # a batch shares a handful of timestamps


_EVENT_DATA = json.JSONEncoder(separators=(",", ":")).encode  # ASCII, as events encodes


def _event_middle(p: _Prepared, event: str, method: str) -> str:
    """The part of an event's data that records of a batch share (between seq and hash)."""
    purpose = p.purpose
    shared = {
        "purpose": purpose.key,
        "event": event,
        "legal_basis": purpose.legal_basis,
        "notice": purpose.notice_key,
        "notice_version": p.notice_version,
        "locale": p.locale,
        "method": method,
        "jurisdiction": p.item.jurisdiction,
        "occurred_at": _iso(p.occurred_at),
        "expires_at": None if p.expires_at is None else _iso(p.expires_at),
    }
    return _EVENT_DATA(shared)[1:-1]


def _after_append(session: Session, events: list[EventRow]) -> None:
    """One outbox event per record, ``govern.consent.<event>``, in the same transaction.

    The aggregate is ``consent.subject`` / the subject reference (so the outbox numbers a
    subject's consent events 1, 2, 3...); ``data`` carries ids, the purpose and the
    decision, never personal values (no IP, no user agent). The rows are built by the
    append loop (data JSON included) and written by :func:`govern.events.emit_rows`.
    """
    from govern.events import emit_rows

    emit_rows(session, events)


def append(session: Session, item: ConsentIn) -> ConsentRecordOut:
    """Append one decision (see :func:`append_many`)."""
    return append_many(session, [item])[0]


def consent_in(**fields: Any) -> ConsentIn:
    """Build a :class:`ConsentIn`, turning validation errors into :class:`ConsentError`."""
    from pydantic import ValidationError

    try:
        return ConsentIn(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "input"
        raise ConsentError(f"{where}: {first['msg']}") from None


def grant(session: Session, subject: str, purpose: str, **fields: Any) -> ConsentRecordOut:
    """Record that ``subject`` gave consent for ``purpose``."""
    return append(session, consent_in(subject=subject, purpose=purpose, event="given", **fields))


def withdraw(session: Session, subject: str, purpose: str, **fields: Any) -> ConsentRecordOut:
    """Record that ``subject`` withdrew consent: one call, exactly as easy as giving it."""
    return append(
        session, consent_in(subject=subject, purpose=purpose, event="withdrawn", **fields)
    )


def record_gpc(session: Session, subject: str, **fields: Any) -> list[ConsentRecordOut]:
    """A Global Privacy Control signal: an objection (refusal) to every sale/sharing purpose."""
    keys = list(
        session.scalars(
            select(Purpose.key).where(Purpose.sale_or_sharing.is_(True)).order_by(Purpose.key)
        )
    )
    fields = {**fields, "method": CollectionMethod.GPC}
    key = fields.pop("idempotency_key", None)
    items = [
        consent_in(
            subject=subject,
            purpose=k,
            event=ConsentEvent.REFUSED,
            idempotency_key=None if key is None else f"{key}:{k}",
            **fields,
        )
        for k in keys
    ]
    return append_many(session, items)


def expire_due(
    session: Session, now: dt.datetime | None = None, limit: int = 10_000
) -> list[ConsentRecordOut]:
    """Append an ``expired`` record for each given consent whose validity has run out."""
    now = utcnow() if now is None else _aware(now, "now")
    rows = session.execute(
        select(ConsentState.subject_ref, Purpose.key, ConsentState.expires_at)
        .join(Purpose, Purpose.id == ConsentState.purpose_id)
        .where(ConsentState.status == ConsentEvent.GIVEN.value, ConsentState.expires_at <= now)
        .order_by(ConsentState.subject_ref, Purpose.key)
        .limit(limit)
    ).all()
    items = [
        ConsentIn(subject=s, purpose=k, event=ConsentEvent.EXPIRED, occurred_at=exp)
        for s, k, exp in rows
    ]
    return append_many(session, items)


# ----------------------------------------------------------------------------- reading


def _decide(
    status: str | None,
    expires_at: dt.datetime | None,
    notice_version: int | None,
    legal_basis: str,
    material_version: int | None,
    at: dt.datetime,
) -> Reason:
    expired = expires_at is not None and expires_at <= at
    return _decide_expired(status, expired, notice_version, legal_basis, material_version)


def _decide_expired(
    status: str | None,
    expired: bool,
    notice_version: int | None,
    legal_basis: str,
    material_version: int | None,
) -> Reason:
    if legal_basis != "Consent":
        # Other bases need no consent; an objection (GPC, refusal, withdrawal) stops them.
        return Reason.OBJECTION if status in NEGATIVE else Reason.LEGAL_BASIS
    if status is None:
        return Reason.NO_RECORD
    if status == "given":
        if expired:
            return Reason.EXPIRED
        if material_version is not None and (notice_version or 0) < material_version:
            return Reason.STALE_NOTICE
        return Reason.GRANTED
    return Reason(status)


_CHECK_SQL = (
    "SELECT s.status, s.record_id, s.occurred_at, s.expires_at, s.notice_version, "
    "p.legal_basis, n.material_version FROM consent_purposes p "
    "JOIN consent_notices n ON n.id = p.notice_id "
    "LEFT JOIN consent_state s ON s.purpose_id = p.id AND s.subject_ref = {ph} "
    "WHERE p.key = {ph}"
)
_SQL = {"sqlite": _CHECK_SQL.format(ph="?"), "postgresql": _CHECK_SQL.format(ph="%s")}


def _ts(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(value)


def check(
    session: Session, subject: str, purpose: str, at: dt.datetime | None = None
) -> ConsentDecision:
    """May this subject's data be processed for this purpose now (or at ``at``, from history)?

    Now: one indexed lookup of the projection. Expired consents and consents given under a
    notice version older than its last material change are no consent (re-consent needed).
    """
    if at is not None:
        return _check_at(session, subject, purpose, _aware(at, "at"))
    now = utcnow()
    conn = session.connection()
    raw = conn.connection.driver_connection
    cur = raw.execute(_SQL[conn.dialect.name], (subject, purpose))  # type: ignore[union-attr]
    row = cur.fetchone()
    if row is None:
        raise UnknownPurposeError(f"unknown purpose {purpose!r}")
    status, rid, occ, exp, nv, basis, material = row
    expires = _ts(exp)
    reason = _decide(status, expires, nv, basis, material, now)
    return ConsentDecision.model_construct(
        purpose=purpose,
        allowed=reason in ALLOWED_REASONS,
        reason=reason,
        reconsent_needed=reason in RECONSENT_REASONS,
        status=None if status is None else ConsentEvent(status),
        record_id=_uuid(rid),
        occurred_at=_ts(occ),
        expires_at=expires,
        notice_version=nv,
        at=now,
    )


def _check_at(session: Session, subject: str, purpose: str, at: dt.datetime) -> ConsentDecision:
    p = _purposes(session, [purpose])[purpose]
    row = session.execute(
        select(
            ConsentRecord.event,
            ConsentRecord.record_id,
            ConsentRecord.occurred_at,
            ConsentRecord.expires_at,
            NoticeVersion.version,
        )
        .join(NoticeVersion, NoticeVersion.id == ConsentRecord.notice_version_id)
        .where(
            ConsentRecord.subject_ref == subject,
            ConsentRecord.purpose_id == p.id,
            ConsentRecord.occurred_at <= at,
        )
        .order_by(ConsentRecord.occurred_at.desc(), ConsentRecord.seq.desc())
        .limit(1)
    ).first()
    material = session.scalar(
        select(func.max(NoticeVersion.version)).where(
            NoticeVersion.notice_id == p.notice_id,
            NoticeVersion.published_at <= at,
            NoticeVersion.material_change.is_(True),
        )
    )
    if material is None:
        material = session.scalar(
            select(func.min(NoticeVersion.version)).where(
                NoticeVersion.notice_id == p.notice_id, NoticeVersion.published_at <= at
            )
        )
    status, rid, occ, exp, nv = row if row is not None else (None, None, None, None, None)
    reason = _decide(status, exp, nv, p.legal_basis, material, at)
    return ConsentDecision(
        purpose=purpose,
        allowed=reason in ALLOWED_REASONS,
        reason=reason,
        reconsent_needed=reason in RECONSENT_REASONS,
        status=None if status is None else ConsentEvent(status),
        record_id=rid,
        occurred_at=occ,
        expires_at=exp,
        notice_version=nv,
        at=at,
    )


def check_many(session: Session, subjects: Sequence[str], purpose: str) -> BatchDecision:
    """Decisions for many subjects and one purpose, in one query.

    The database compares each expiry with the time of the check (as ``expire_due`` does),
    so a row needs no timestamp parsing; rows with the same status, expiry verdict and
    notice version share one decision.
    """

    now = utcnow()
    p = _purposes(session, [purpose])[purpose]
    material = session.scalar(select(Notice.material_version).where(Notice.id == p.notice_id))
    conn = session.connection()
    raw: Any = conn.connection.driver_connection
    at = _Binder.column(session, _STATE, "expires_at")(now)
    if conn.dialect.name == "postgresql":
        sql = (
            "SELECT subject_ref, status, expires_at IS NOT NULL AND expires_at <= %s, "
            "notice_version FROM consent_state WHERE purpose_id = %s AND subject_ref = ANY(%s)"
        )
        rows = raw.execute(sql, (at, p.id, list(subjects))).fetchall()
    else:
        sql = (
            "SELECT subject_ref, status, expires_at IS NOT NULL AND expires_at <= ?, "
            "notice_version FROM consent_state "
            "WHERE purpose_id = ? AND subject_ref IN (SELECT value FROM json_each(?))"
        )
        rows = raw.execute(sql, (at, p.id, json.dumps(list(subjects)))).fetchall()
    basis = p.legal_basis
    reasons: dict[str, Reason] = dict.fromkeys(
        subjects, _decide_expired(None, False, None, basis, material)
    )
    decided: dict[tuple[Any, Any, Any], Reason] = {}
    for s, status, expired, nv in rows:
        key = (status, expired, nv)
        reason = decided.get(key)
        if reason is None:
            reason = decided[key] = _decide_expired(status, bool(expired), nv, basis, material)
        reasons[s] = reason
    return BatchDecision.model_construct(purpose=purpose, at=now, reasons=reasons)


def history(session: Session, subject: str, purpose: str | None = None) -> list[ConsentRecordOut]:
    """Every record of a subject (optionally one purpose), in chain order."""
    q = _records_query().where(ConsentRecord.subject_ref == subject)
    if purpose is not None:
        pid = _purposes(session, [purpose])[purpose].id
        q = q.where(ConsentRecord.purpose_id == pid)
    return [_record_out(r) for r in session.execute(q.order_by(ConsentRecord.seq))]


def _records_query() -> Any:
    return (
        select(ConsentRecord, Purpose.key, Notice.key, NoticeVersion.version)
        .join(Purpose, Purpose.id == ConsentRecord.purpose_id)
        .join(NoticeVersion, NoticeVersion.id == ConsentRecord.notice_version_id)
        .join(Notice, Notice.id == NoticeVersion.notice_id)
    )


def _record_out(row: Any) -> ConsentRecordOut:
    r, purpose, notice, version = row
    return ConsentRecordOut(
        record_id=r.record_id,
        subject=r.subject_ref,
        seq=r.seq,
        purpose=purpose,
        event=ConsentEvent(r.event),
        notice=notice,
        notice_version=version,
        locale=r.locale,
        legal_basis=LegalBasis(r.legal_basis),
        method=CollectionMethod(r.method),
        jurisdiction=r.jurisdiction,
        controller=r.controller,
        occurred_at=r.occurred_at,
        recorded_at=r.recorded_at,
        expires_at=r.expires_at,
        tcf_string=r.tcf_string,
        idempotency_key=r.idempotency_key,
        prev_hash=r.prev_hash,
        hash=r.hash,
        subject_id=r.subject_id,
        source_ip=r.source_ip,
        user_agent=r.user_agent,
    )


def shred_subject(
    session: Session, subject_ref: str, *, actor: str, reason: str = "erasure"
) -> ShredResult | None:
    """Crypto-shred the source IPs and user agents of a subject's consent chain.

    Destroys the key of the chain's key owner (its govern ``subject_id``, or
    :func:`key_subject_id` of the reference) with :func:`govern.keys.shred_subject`, which
    records a shred proof and an audit row. The records, their hashes and the proof of
    consent stay; the sealed values then read as a ``Shredded`` marker and exports say
    ``shredded``. Returns ``None`` when nothing was ever sealed for the subject.
    """
    from govern.keys.service import shred_subject as shred

    owner = session.scalar(select(ChainHead.subject_id).where(ChainHead.subject_ref == subject_ref))
    return shred(session, owner or key_subject_id(subject_ref), actor=actor, reason=reason)


__all__ = [
    "add_notice",
    "add_notice_version",
    "add_purpose",
    "append",
    "append_bulk",
    "append_many",
    "check",
    "check_many",
    "consent_in",
    "expire_due",
    "grant",
    "history",
    "key_subject_id",
    "list_purposes",
    "load_catalog",
    "notice_text",
    "record_gpc",
    "shred_subject",
    "withdraw",
]
