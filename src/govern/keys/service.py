"""Key management as plain functions: load, attach, rotate, reencrypt, retire, rewrap, shred.

Functions taking a ``Session`` never commit. :func:`reencrypt` is the exception by design:
it takes an engine and commits every batch, so that a killed run keeps its progress and a
rerun picks up where it stopped (it only ever touches values not yet under the primary key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    MetaData,
    Table,
    bindparam,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy import column as sa_column
from sqlalchemy import insert as sa_insert
from sqlalchemy import table as sa_table
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from govern.config import Settings
from govern.crypto import aead
from govern.crypto.keyring import (
    FileKeyProvider,
    KeyProvider,
    Keyring,
    StaticKeyProvider,
    bind,
    decode_key,
    holder,
    new_key,
)
from govern.db import write_connection
from govern.errors import ConfigError, KeyInUseError, UnknownKeyError, UsageError
from govern.keys.models import (
    PURPOSE_BLIND,
    PURPOSE_DATA,
    STATE_ACTIVE,
    STATE_PRIMARY,
    STATE_RETIRED,
    DataKey,
    ShredProof,
    SubjectKey,
    TokenVaultEntry,
)
from govern.keys.schemas import KeyInfo, ReencryptResult, ShredResult
from govern.types.token import is_token, make_token
from govern.types.utc import utcnow

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after every committed batch."""


# keyring loading --------------------------------------------------------------
def provider_from_settings(settings: Settings) -> KeyProvider:
    """The built-in provider for ``GOVERN_KEK`` or ``GOVERN_KEK_FILE`` (+ ``_PREVIOUS``)."""
    previous = None
    if settings.kek_previous is not None:
        previous = decode_key(settings.kek_previous.get_secret_value(), "GOVERN_KEK_PREVIOUS")
    if settings.kek_file is not None:
        return FileKeyProvider(settings.kek_file, previous)
    if settings.kek is None:
        raise ConfigError(
            "GOVERN_KEK is not set: encrypted columns need it "
            "(generate one with `govern keys generate-kek`)"
        )
    return StaticKeyProvider(settings.kek_bytes(), previous)


def _add_key(session: Session, keyring: Keyring, purpose: str, state: str) -> DataKey:
    key = new_key()
    row = DataKey(
        purpose=purpose,
        state=state,
        kek_fingerprint=keyring.kek_fingerprint,
        wrapped_key=keyring.wrap(key, purpose),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    if purpose == PURPOSE_BLIND:
        keyring.set_blind_root(key)
    else:
        keyring.add_data_key(row.id, key, primary=state == STATE_PRIMARY)
    return row


KEYS_LOCK = int.from_bytes(hashlib.sha256(b"govern.keys").digest()[:8], "big", signed=True)
"""The PostgreSQL advisory-lock key that serialises changes to the set of data keys."""


def lock_keys(session: Session) -> None:
    """Serialise changes to ``data_keys`` (first keys, rotation) until the transaction ends.

    Call it before reading the keys. PostgreSQL takes a transaction-scoped advisory lock
    (under READ COMMITTED, govern's default, later statements then see what the previous
    holder committed). SQLite takes the database's write lock with a write that changes
    nothing; a transaction that has already read stale data fails there rather than go on.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(KEYS_LOCK)))
    else:
        session.connection().exec_driver_sql("DELETE FROM data_keys WHERE 0")


def load_keyring(session: Session, provider: KeyProvider, *, create: bool = True) -> Keyring:
    """Unwrap every live data key; with ``create``, make the first ones on a new database.

    With ``create`` it takes :func:`lock_keys` first, so processes starting together on a new
    database agree on one primary data key and one blind-index root.
    """
    if create:
        lock_keys(session)  # before the first read: another process may be creating them
    keyring = Keyring(provider)
    rows = session.scalars(
        select(DataKey).where(DataKey.state != STATE_RETIRED).order_by(DataKey.id)
    ).all()
    for row in rows:
        assert row.wrapped_key is not None
        key = keyring.unwrap(row.wrapped_key, row.kek_fingerprint, row.purpose, row.id)
        if row.purpose == PURPOSE_BLIND:
            keyring.set_blind_root(key)
        else:
            keyring.add_data_key(row.id, key, primary=row.state == STATE_PRIMARY)
    if create:
        if not any(r.purpose == PURPOSE_DATA for r in rows):
            _add_key(session, keyring, PURPOSE_DATA, STATE_PRIMARY)
        if not any(r.purpose == PURPOSE_BLIND for r in rows):
            _add_key(session, keyring, PURPOSE_BLIND, STATE_ACTIVE)
    return keyring


def _has_first_keys(keyring: Keyring) -> bool:
    """Whether a loaded keyring has a data key and a blind-index root (nothing to create)."""
    return bool(keyring.data_key_ids()) and keyring.blind_or_none is not None


def load_subject_key(conn: Connection, key_id: int) -> tuple[str, bytes] | None:
    """``(kek_fingerprint, wrapped)`` of a subject key; ``None`` if shredded (proof exists)."""
    sk = SubjectKey.__table__
    proofs = ShredProof.__table__
    row = conn.execute(
        select(sk.c.kek_fingerprint, sk.c.wrapped_key).where(sk.c.id == key_id)
    ).first()
    if row is not None:
        return str(row[0]), bytes(row[1])
    shredded = conn.execute(select(proofs.c.id).where(proofs.c.subject_key_id == key_id)).first()
    if shredded is not None:
        return None
    raise UnknownKeyError(
        f"subject key {key_id} is neither stored nor shredded in this database",
        key_id=key_id,
    )


def _subject_loader(engine: Engine) -> Callable[[int], tuple[str, bytes] | None]:
    def load(key_id: int) -> tuple[str, bytes] | None:
        with engine.connect() as conn:
            return load_subject_key(conn, key_id)

    return load


def bind_keyring(engine: Engine, keyring: Keyring) -> Keyring:
    """Bind ``keyring`` to ``engine`` and let it load subject keys through that engine."""
    keyring.subject_loader = _subject_loader(engine)
    bind(engine, keyring)
    return keyring


def attach(engine: Engine, settings: Settings | KeyProvider) -> Keyring:
    """Load the data keys (creating the first ones on a new database) and bind them.

    Call once per engine at start-up, before sessions touch protected columns::

        engine = govern.create_engine(url)
        govern.keys.attach(engine, settings)
    """
    from govern.db import transaction, write_transaction

    provider = provider_from_settings(settings) if isinstance(settings, Settings) else settings
    with transaction(engine) as session:
        keyring = load_keyring(session, provider, create=False)
    if not _has_first_keys(keyring):  # a new database: create them once, whoever else starts
        try:
            with write_transaction(engine) as session:
                keyring = load_keyring(session, provider)
        except IntegrityError:
            # Another process created them first and the unique indexes of core_0015 refused
            # a second set (possible when this engine runs above READ COMMITTED): use theirs.
            with transaction(engine) as session:
                keyring = load_keyring(session, provider, create=False)
            if not _has_first_keys(keyring):
                raise  # not that: a real integrity error
    return bind_keyring(engine, keyring)


def _keyring_of(session: Session) -> Keyring | None:
    return holder(session.get_bind().dialect).keyring


# subject keys -------------------------------------------------------------------
def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _insert_ignore(session: Session, table: Table) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=["subject_id"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=["subject_id"])


def subject_ciphers(
    session: Session, keyring: Keyring, subject_ids: Iterable[Any]
) -> dict[uuid.UUID, aead.Cipher]:
    """Each subject's shredding cipher, creating missing keys in the session's transaction."""
    sk: Table = SubjectKey.__table__  # type: ignore[assignment]
    wanted = sorted({_uuid(s) for s in subject_ids})
    out: dict[uuid.UUID, aead.Cipher] = {}

    def fetch(ids: list[uuid.UUID]) -> list[Any]:
        rows: list[Any] = []
        for i in range(0, len(ids), 500):
            rows += session.execute(
                select(sk.c.id, sk.c.subject_id, sk.c.kek_fingerprint, sk.c.wrapped_key).where(
                    sk.c.subject_id.in_(ids[i : i + 500])
                )
            ).all()
        return rows

    rows = fetch(wanted)
    missing = sorted(set(wanted) - {r[1] for r in rows})
    if missing:
        now = utcnow()
        session.execute(
            _insert_ignore(session, sk),
            [
                {
                    "subject_id": sid,
                    "kek_fingerprint": keyring.kek_fingerprint,
                    "wrapped_key": keyring.wrap(new_key(), "subject"),
                    "created_at": now,
                }
                for sid in missing
            ],
        )
        rows += fetch(missing)
    for key_id, sid, fp, wrapped in rows:
        key = keyring.unwrap(bytes(wrapped), str(fp), "subject", int(key_id))
        out[sid] = keyring.add_subject_key(int(key_id), key)
    return out


def shred_subject(
    session: Session, subject_id: Any, *, actor: str, reason: str = "erasure"
) -> ShredResult | None:
    """Destroy a subject's key: every value sealed under it becomes unreadable everywhere.

    Records a :class:`~govern.keys.models.ShredProof` (key id, SHA-256 of the wrapped key,
    time, actor, reason; no personal data) and an audit-log row in the same transaction.
    Returns ``None`` when the subject never had a key (nothing was sealed for it).
    """
    from govern.domains.core import AuditLog

    row = session.scalars(
        select(SubjectKey).where(SubjectKey.subject_id == _uuid(subject_id))
    ).first()
    if row is None:
        return None
    proof = ShredProof(
        subject_key_id=row.id,
        wrapped_key_sha256=hashlib.sha256(row.wrapped_key).hexdigest(),
        shredded_at=utcnow(),
        actor=actor,
        reason=reason,
    )
    key_id = row.id
    session.delete(row)
    session.add(proof)
    session.add(
        AuditLog(
            actor=actor,
            action="crypto.shred",
            target_type="subject_key",
            target_id=str(key_id),
            details={"reason": reason},
        )
    )
    session.flush()
    keyring = _keyring_of(session)
    if keyring is not None:
        keyring.forget_subject_key(key_id)
    return ShredResult(subject_key_id=key_id, proof_id=proof.id, shredded_at=proof.shredded_at)


class _SealedUnder(ColumnElement[bool]):
    """``value`` is an envelope sealed by subject key ``key_id`` (its 5-byte header)."""

    inherit_cache = True
    type = Boolean()

    def __init__(self, value: Any, key_id: Any) -> None:
        self.value = value
        self.key_id = key_id


@compiles(_SealedUnder, "postgresql")
def _sealed_under_pg(element: _SealedUnder, compiler: Any, **kw: Any) -> str:
    v = compiler.process(element.value, **kw)
    k = compiler.process(element.key_id, **kw)
    return f"(substr({v}, 1, 5) = '\\x02'::bytea || int4send(CAST({k} AS integer)))"


@compiles(_SealedUnder)
def _sealed_under_default(element: _SealedUnder, compiler: Any, **kw: Any) -> str:
    v = compiler.process(element.value, **kw)
    k = compiler.process(element.key_id, **kw)
    return f"(hex(substr({v}, 1, 5)) = '02' || printf('%08X', {k}))"


def shredded_columns(table: Table, subject: str | None = None) -> list[Column[Any]]:
    """The crypto-shredded columns of ``table`` (sealed under the key in ``subject``)."""
    from govern.types.shredded import _Shredded

    return [
        c
        for c in table.columns
        if isinstance(c.type, _Shredded) and (subject is None or c.type.subject == subject)
    ]


def sealed_under_live_key(table: Table, subject: str) -> ColumnElement[bool]:
    """Rows of ``table`` holding a value sealed under their subject's current key.

    A row whose values were sealed under a key since destroyed (or never under a subject
    key) does not match, so a crypto-shred selects each row at most once.
    """
    sk: Table = SubjectKey.__table__  # type: ignore[assignment]
    cols = shredded_columns(table, subject)
    if not cols:
        return false()
    return exists(
        select(1).where(
            sk.c.subject_id == table.c[subject],
            or_(*(_SealedUnder(c, sk.c.id) for c in cols)),
        )
    )


def shred_subject_keeping(
    session: Session,
    subject_id: Any,
    *,
    dropped: Mapping[str, ColumnElement[bool]],
    actor: str,
    reason: str,
    metadata: MetaData | None = None,
) -> tuple[ShredResult | None, int]:
    """Destroy a subject's key but keep the values of rows not in ``dropped`` readable.

    ``dropped`` maps a table name to the condition of its rows whose values are meant to
    become unreadable (rows of tables not named are all kept). Kept values are read with
    the current key and re-sealed under a fresh key for the subject after the old one is
    destroyed, in the caller's transaction; copies elsewhere (quarantine, backups) stay
    sealed under the destroyed key. Returns the shred result (None: the subject had no
    key) and the number of rows re-sealed.

    Raises:
        KeyringNotBoundError: values must be kept but the engine has no keyring.
    """
    from govern.types.shredded import ForSubject, Shredded

    if metadata is None:
        from govern.db import load_models

        metadata = load_models()
    sid = _uuid(subject_id)
    keep: list[tuple[Table, Any, dict[str, Any]]] = []
    for table in metadata.sorted_tables:
        by_subject: dict[str, list[Column[Any]]] = {}
        for c in shredded_columns(table):
            by_subject.setdefault(c.type.subject, []).append(c)  # type: ignore[attr-defined]
        for subj, cols in by_subject.items():
            if subj not in table.c or len(table.primary_key.columns) != 1:
                continue
            pk = next(iter(table.primary_key.columns))
            where = [table.c[subj] == sid, sealed_under_live_key(table, subj)]
            if table.name in dropped:
                where.append(not_(dropped[table.name]))
            for row in session.execute(select(pk, *cols).where(*where).order_by(pk)):
                values = {
                    c.name: v
                    for c, v in zip(cols, row[1:], strict=True)
                    if v is not None and not isinstance(v, Shredded)
                }
                if values:
                    keep.append((table, row[0], values))
    result = shred_subject(session, sid, actor=actor, reason=reason)
    if result is None or not keep:
        return result, 0
    keyring = _keyring_of(session)
    if keyring is None:
        from govern.errors import KeyringNotBoundError

        raise KeyringNotBoundError("re-sealing kept values needs a keyring bound to the engine")
    cipher = subject_ciphers(session, keyring, [sid])[sid]
    for table, key, values in keep:
        pk = next(iter(table.primary_key.columns))
        session.execute(
            update(table)
            .where(pk == key)
            .values({name: ForSubject(cipher, v) for name, v in values.items()})
        )
    return result, len(keep)


# tokens ---------------------------------------------------------------------------
def tokenise(session: Session, value: str, kind: str) -> str:
    """Store ``value`` encrypted in the token vault and return its token (in the same txn)."""
    if is_token(value):
        return value
    token = make_token(value)
    session.execute(
        sa_insert(TokenVaultEntry).values(token=token, kind=kind, value=value, created_at=utcnow())
    )
    return token


def detokenise(session: Session, token: str, *, actor: str, purpose: str) -> str:
    """The value behind ``token``; writes who asked and why to the audit log."""
    from govern.domains.core import AuditLog

    if not is_token(token):
        raise UsageError("not a govern token")
    entry = session.get(TokenVaultEntry, token)
    if entry is None:
        raise UsageError("unknown token: it is not in this database's token vault")
    session.add(
        AuditLog(
            actor=actor,
            action="token.detokenise",
            target_type="token",
            target_id=token,
            details={"kind": entry.kind, "purpose": purpose},
        )
    )
    return entry.value


# protected columns -------------------------------------------------------------------
@dataclass(frozen=True)
class ProtectedColumn:
    table: Table
    column: Column[Any]
    protection: str

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"

    @property
    def pk(self) -> Column[Any]:
        pks = list(self.table.primary_key.columns)
        if len(pks) == 1:
            return pks[0]
        # A composite primary key (e.g. the consent ledger's): a one-column unique, non-null
        # key orders and addresses rows just as well.
        for col in self.table.columns:
            if col.unique and not col.nullable:
                return col
        raise UsageError(
            f"{self.table.name} needs a one-column primary or unique non-null key for key work"
        )

    def raw(self) -> tuple[Any, Any, Any]:
        """A lightweight table whose value column is plain binary (no type processing)."""
        from sqlalchemy import LargeBinary, String

        pk = self.pk
        raw_type = String() if self.protection == "tokenised" else LargeBinary()
        t = sa_table(
            self.table.name,
            sa_column(pk.name, pk.type),
            sa_column(self.column.name, raw_type),
        )
        return t, t.c[pk.name], t.c[self.column.name]


def protected_columns(metadata: MetaData | None = None) -> list[ProtectedColumn]:
    """Every column of ``metadata`` (default: govern's) whose type protects its values."""
    if metadata is None:
        from govern.db import load_models

        metadata = load_models()
    out = []
    for table in metadata.sorted_tables:
        for col in table.columns:
            protection = getattr(type(col.type), "protection", None)
            if protection is not None:
                out.append(ProtectedColumn(table, col, protection))
    return sorted(out, key=lambda p: p.name)


def _sealed(protection: str) -> bool:
    return protection in ("encrypted", "shredded")


def _header_in(col: Any, headers: list[bytes]) -> ColumnElement[bool]:
    return func.substr(col, 1, aead.HEADER_LEN).in_(headers)


def count_sealed_by(
    conn: Connection | Session, key_ids: list[int], metadata: MetaData | None = None
) -> dict[str, int]:
    """``{table.column: values}`` sealed by any of the data keys ``key_ids`` (non-zero only)."""
    headers = [aead.header(aead.DATA, k) for k in key_ids]
    out: dict[str, int] = {}
    if not headers:
        return out
    for pc in protected_columns(metadata):
        if not _sealed(pc.protection):
            continue
        t, _, value = pc.raw()
        n = int(
            conn.execute(
                select(func.count()).select_from(t).where(_header_in(value, headers))
            ).scalar_one()
        )
        if n:
            out[pc.name] = n
    return out


# key lifecycle ----------------------------------------------------------------------
def _info(row: DataKey, now: dt.datetime) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        purpose=row.purpose,
        state=row.state,
        kek_fingerprint=row.kek_fingerprint,
        created_at=row.created_at,
        age_days=(now - row.created_at).days,
        retired_at=row.retired_at,
    )


def list_keys(session: Session) -> list[KeyInfo]:
    """Every data key, oldest first, with its state and age (never its material)."""
    now = utcnow()
    return [_info(r, now) for r in session.scalars(select(DataKey).order_by(DataKey.id))]


def rotate(session: Session, keyring: Keyring) -> KeyInfo:
    """Make a new primary data key; the old primary stays readable as ``active``.

    Concurrent rotations are serialised (:func:`lock_keys`), so exactly one primary remains.
    """
    lock_keys(session)
    for row in session.scalars(
        select(DataKey).where(DataKey.purpose == PURPOSE_DATA, DataKey.state == STATE_PRIMARY)
    ):
        row.state = STATE_ACTIVE
    row = _add_key(session, keyring, PURPOSE_DATA, STATE_PRIMARY)
    return _info(row, utcnow())


def retire(session: Session, key_id: int) -> KeyInfo:
    """Retire a data key and destroy its wrapped material; refused while any value uses it."""
    row = session.get(DataKey, key_id)
    if row is None or row.purpose != PURPOSE_DATA:
        raise UnknownKeyError(f"there is no data key {key_id}", key_id=key_id)
    if row.state == STATE_RETIRED:
        raise UsageError(f"data key {key_id} is already retired")
    if row.state == STATE_PRIMARY:
        raise KeyInUseError(f"data key {key_id} is the primary: run `govern keys rotate` first")
    used = count_sealed_by(session, [key_id])
    if used:
        where = ", ".join(f"{name} ({n})" for name, n in sorted(used.items()))
        raise KeyInUseError(
            f"data key {key_id} still seals {sum(used.values())} value(s): {where}; "
            "run `govern keys reencrypt` first"
        )
    row.state = STATE_RETIRED
    row.wrapped_key = None
    row.retired_at = utcnow()
    session.flush()
    keyring = _keyring_of(session)
    if keyring is not None:
        keyring.drop_data_key(key_id)
    return _info(row, utcnow())


def rewrap(session: Session, keyring: Keyring, batch_size: int = 1000) -> dict[str, int]:
    """Rewrap every key not under the current KEK (data and subject keys); no data rewrite."""
    current = keyring.kek_fingerprint
    counts = {"data_keys": 0, "subject_keys": 0}
    for row in session.scalars(
        select(DataKey).where(DataKey.wrapped_key.is_not(None), DataKey.kek_fingerprint != current)
    ):
        assert row.wrapped_key is not None
        key = keyring.unwrap(row.wrapped_key, row.kek_fingerprint, row.purpose, row.id)
        row.wrapped_key = keyring.wrap(key, row.purpose)
        row.kek_fingerprint = current
        counts["data_keys"] += 1
    sk: Table = SubjectKey.__table__  # type: ignore[assignment]
    last = 0
    while True:
        rows = session.execute(
            select(sk.c.id, sk.c.kek_fingerprint, sk.c.wrapped_key)
            .where(sk.c.kek_fingerprint != current, sk.c.id > last)
            .order_by(sk.c.id)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        params = []
        for key_id, fp, wrapped in rows:
            key = keyring.unwrap(bytes(wrapped), str(fp), "subject", int(key_id))
            params.append({"_id": key_id, "_w": keyring.wrap(key, "subject")})
        session.execute(
            update(sk)
            .where(sk.c.id == bindparam("_id"))
            .values(wrapped_key=bindparam("_w"), kek_fingerprint=current),
            params,
        )
        counts["subject_keys"] += len(rows)
        last = int(rows[-1][0])
    session.flush()
    return counts


MAX_PAUSE = 3600.0
"""The longest ``reencrypt`` pause between batches, in seconds."""


def check_reencrypt_args(batch_size: int, pause: float) -> None:
    """Raise :class:`UsageError` for a batch size or pause :func:`reencrypt` refuses."""
    if batch_size < 1:
        raise UsageError("batch size must be at least 1")
    if not (math.isfinite(pause) and 0 <= pause <= MAX_PAUSE):
        raise UsageError(f"pause must be a number of seconds from 0 to {MAX_PAUSE:g}")


def reencrypt(
    engine: Engine,
    keyring: Keyring,
    *,
    batch_size: int = 1000,
    metadata: MetaData | None = None,
    progress: Progress | None = None,
    pause: float = 0.0,
) -> ReencryptResult:
    """Re-seal every value under a non-primary data key with the primary, committing per batch.

    Safe to kill and rerun: each batch is one transaction, and only values still under an
    old key are selected (keyset pagination over the primary key), so a rerun resumes.
    ``pause`` (seconds, up to :data:`MAX_PAUSE`) is slept between committed batches, outside
    any transaction, to leave a busy database room for its own traffic.
    """
    check_reencrypt_args(batch_size, pause)
    primary = keyring.primary()
    old = [k for k in keyring.data_key_ids() if k != primary.key_id]
    headers = [aead.header(aead.DATA, k) for k in old]
    targets = [pc for pc in protected_columns(metadata) if _sealed(pc.protection)]
    per_column: dict[str, int] = {}
    if not headers:
        return ReencryptResult(primary_key_id=primary.key_id, values=0, columns={}, old_key_ids=[])
    with engine.connect() as conn:
        totals = {}
        for pc in targets:
            t, _, value = pc.raw()
            totals[pc.name] = int(
                conn.execute(
                    select(func.count()).select_from(t).where(_header_in(value, headers))
                ).scalar_one()
            )
    total = sum(totals.values())
    done = 0
    if progress is not None:
        progress(0, total)
    for pc in targets:
        if not totals[pc.name]:
            continue
        t, pk, value = pc.raw()
        ctx = pc.name.encode()
        last: Any = None
        count = 0
        stmt = update(t).where(pk == bindparam("_pk")).values({value.name: bindparam("_v")})
        while True:
            # the write lock first: the batch reads, then writes, on a live database
            with write_connection(engine) as conn:
                q = select(pk, value).where(_header_in(value, headers))
                if last is not None:
                    q = q.where(pk > last)
                rows = conn.execute(q.order_by(pk).limit(batch_size)).all()
                if not rows:
                    break
                params = []
                for key, blob in rows:
                    raw = bytes(blob)
                    _, key_id = aead.parse_header(raw)
                    plain = keyring.data_cipher(key_id, pc.table.name, pc.column.name).open(
                        raw, ctx
                    )
                    params.append({"_pk": key, "_v": primary.seal(plain, ctx)})
                conn.execute(stmt, params)
            last = rows[-1][0]
            count += len(rows)
            done += len(rows)
            if progress is not None:
                progress(done, total)
            if pause and len(rows) == batch_size:  # a short batch was this column's last
                time.sleep(pause)
        per_column[pc.name] = count
    return ReencryptResult(
        primary_key_id=primary.key_id, values=done, columns=per_column, old_key_ids=old
    )
