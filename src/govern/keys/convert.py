"""Data migrations that protect existing columns in place, and unprotect them on downgrade.

Used by the revisions that convert the four domains (``core_0004``, ``commerce_0002``,
``analytics_0002``, ``community_0002``). Existing rows are read in keyset batches, sealed
(or tokenised, or blind-indexed) in Python, staged in a scratch table, and copied back after
the column type changes; downgrades do the reverse. Column order and names never change, so
a downgrade restores the exact schema.

The KEK is read with govern's settings loader at migration time. A database whose tables
are empty migrates without one (nothing to seal), so ``govern quickstart`` works on a new
database; with rows present and no KEK the migration stops with an error naming GOVERN_KEK.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from govern.crypto import aead
from govern.crypto.keyring import Keyring
from govern.errors import ConfigError
from govern.types.token import is_token, make_token
from govern.types.utc import UTCDateTime, utcnow

BATCH = 1000
SHREDDED_PLACEHOLDER = {"str": "", "json": "{}"}


@dataclass(frozen=True)
class Plan:
    """One column to protect: ``kind`` is encrypt, shred or token; ``plain`` its old type."""

    column: str
    kind: str
    plain: sa.types.TypeEngine[Any]
    nullable: bool
    codec: str = "str"
    vault_kind: str | None = None


@dataclass(frozen=True)
class Blind:
    """A blind-index twin column to add and fill from ``source``."""

    column: str
    source: str
    bits: int
    nullable: bool
    casefold: bool = False


def _encode(codec: str, value: Any) -> bytes:
    if codec == "json":
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    elif codec == "date":
        text = value.isoformat()
    elif codec == "decimal":
        text = str(Decimal(value))
    else:
        text = str(value)
    return text.encode("utf-8", "surrogatepass")


def _keyring(conn: Connection, table: str, rows: int) -> Keyring:
    from govern.config import load_settings
    from govern.keys.service import load_keyring, provider_from_settings

    settings = load_settings()
    if not settings.has_kek:
        raise ConfigError(
            f"GOVERN_KEK is not set and table {table} has {rows} row(s) to convert: "
            "set GOVERN_KEK (see `govern keys generate-kek`) and migrate again"
        )
    from govern.keys.service import load_subject_key

    session = Session(bind=conn)
    keyring = load_keyring(session, provider_from_settings(settings))
    session.flush()
    keyring.subject_loader = lambda key_id: load_subject_key(conn, key_id)
    return keyring


def _count(conn: Connection, table: str, columns: Sequence[str]) -> int:
    t = sa.table(table, *(sa.column(c) for c in columns))
    cond = sa.or_(*(t.c[c].is_not(None) for c in columns))
    return int(conn.execute(sa.select(sa.func.count()).select_from(t).where(cond)).scalar_one())


def _batches(conn: Connection, t: Any, pk: str) -> Any:
    last: Any = None
    while True:
        q = sa.select(t)
        if last is not None:
            q = q.where(t.c[pk] > last)
        rows = conn.execute(q.order_by(t.c[pk]).limit(BATCH)).all()
        if not rows:
            return
        yield rows
        last = getattr(rows[-1], pk)


def _vault() -> Any:
    return sa.table(
        "token_vault",
        sa.column("token", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("value", sa.LargeBinary()),
        sa.column("created_at", UTCDateTime()),
    )


def _copy_from_stage(
    conn: Connection, table: str, pk: str, pk_type: Any, cols: dict[str, Any]
) -> None:
    t = sa.table(table, sa.column(pk, pk_type), *(sa.column(c, typ) for c, typ in cols.items()))
    s = sa.table(
        f"_govern_stage_{table}",
        sa.column(pk, pk_type),
        *(sa.column(c, typ) for c, typ in cols.items()),
    )
    values = {c: sa.select(s.c[c]).where(s.c[pk] == t.c[pk]).scalar_subquery() for c in cols}
    conn.execute(sa.update(t).where(t.c[pk].in_(sa.select(s.c[pk]))).values(values))


def offline_sqlite() -> bool:
    """Offline SQLite (``govern migrate sql``) cannot reflect tables to rebuild them."""
    from alembic import op

    ctx = op.get_context()
    return bool(ctx.as_sql and ctx.dialect.name == "sqlite")


def _offline_note(table: str, what: str) -> bool:
    from alembic import op

    if not offline_sqlite():
        return False
    op.execute(f"-- govern: {what} {table}: a SQLite table rebuild, run online (migrate up)")
    return True


def _stage(conn: Connection, table: str, pk: str, pk_type: Any, cols: dict[str, Any]) -> sa.Table:
    md = sa.MetaData()
    stage = sa.Table(
        f"_govern_stage_{table}",
        md,
        sa.Column(pk, pk_type, primary_key=True),
        *(sa.Column(c, typ) for c, typ in cols.items()),
    )
    stage.create(conn)
    return stage


def protect(
    table: str,
    pk: str,
    pk_type: Any,
    plans: Sequence[Plan],
    blinds: Sequence[Blind] = (),
    subject: str | None = None,
) -> None:
    """Upgrade: seal, tokenise and index ``table``'s columns, keeping their order."""
    from alembic import op

    from govern.keys.service import subject_ciphers

    if _offline_note(table, "protect"):
        return
    conn = op.get_bind()
    sealed = [p for p in plans if p.kind != "token"]
    # Offline (``govern migrate sql``) there are no rows to read: emit the DDL only.
    rows = 0 if op.get_context().as_sql else _count(conn, table, [p.column for p in plans])
    stage_cols = {p.column: sa.LargeBinary() for p in sealed}
    stage_cols.update({b.column: sa.LargeBinary() for b in blinds})
    if rows:
        keyring = _keyring(conn, table, rows)
        primary = keyring.primary()
        read = sa.table(
            table,
            sa.column(pk, pk_type),
            *(sa.column(p.column, p.plain) for p in plans),
            *([sa.column(subject, sa.Uuid())] if subject else []),
        )
        stage = _stage(conn, table, pk, pk_type, stage_cols)
        vault = _vault()
        write = sa.table(
            table, sa.column(pk, pk_type), *(sa.column(p.column, sa.String()) for p in plans)
        )
        for batch in _batches(conn, read, pk):
            ciphers: dict[Any, aead.Cipher] = {}
            if subject and any(p.kind == "shred" for p in plans):
                sids = {getattr(r, subject) for r in batch} - {None}
                if sids:
                    ciphers = dict(subject_ciphers(Session(bind=conn), keyring, sids))
            staged, tokens, vault_rows = [], [], []
            for r in batch:
                out: dict[str, Any] = {pk: getattr(r, pk)}
                for p in plans:
                    value = getattr(r, p.column)
                    ctx = f"{table}.{p.column}".encode()
                    if value is None:
                        if p.kind != "token":
                            out[p.column] = None
                        continue
                    if p.kind == "token":
                        if not is_token(value):
                            token = make_token(value)
                            vault_rows.append(
                                {
                                    "token": token,
                                    "kind": p.vault_kind,
                                    "value": primary.seal(
                                        _encode("str", value), b"token_vault.value"
                                    ),
                                    "created_at": utcnow(),
                                }
                            )
                            tokens.append({"_pk": getattr(r, pk), "_v": token, "_c": p.column})
                        continue
                    cipher = primary
                    if p.kind == "shred" and subject and getattr(r, subject) is not None:
                        cipher = ciphers[getattr(r, subject)]
                    out[p.column] = cipher.seal(_encode(p.codec, value), ctx)
                for b in blinds:
                    src = getattr(r, b.source)
                    text = None if src is None else (src.casefold() if b.casefold else src)
                    out[b.column] = (
                        None
                        if text is None
                        else keyring.blind.digest(
                            f"{table}.{b.source}".encode(),
                            text.encode("utf-8", "surrogatepass"),
                            b.bits,
                        )
                    )
                staged.append(out)
            if stage_cols:
                conn.execute(stage.insert(), staged)
            if vault_rows:
                conn.execute(vault.insert(), vault_rows)
            for col in {t["_c"] for t in tokens}:
                conn.execute(
                    sa.update(write)
                    .where(write.c[pk] == sa.bindparam("_pk"))
                    .values({col: sa.bindparam("_v")}),
                    [{"_pk": t["_pk"], "_v": t["_v"]} for t in tokens if t["_c"] == col],
                )
    with op.batch_alter_table(table) as batch_op:
        for p in sealed:
            batch_op.alter_column(
                p.column,
                existing_type=p.plain,
                type_=sa.LargeBinary(),
                existing_nullable=p.nullable,
                postgresql_using=f"convert_to({p.column}::text, 'UTF8')",
            )
        for b in blinds:
            batch_op.add_column(sa.Column(b.column, sa.LargeBinary(), nullable=True))
    if rows and stage_cols:
        _copy_from_stage(conn, table, pk, pk_type, stage_cols)
        stage.drop(conn)
    not_null = [b for b in blinds if not b.nullable]
    if not_null:
        with op.batch_alter_table(table) as batch_op:
            for b in not_null:
                batch_op.alter_column(b.column, existing_type=sa.LargeBinary(), nullable=False)


def unprotect(
    table: str,
    pk: str,
    pk_type: Any,
    plans: Sequence[Plan],
    blinds: Sequence[Blind] = (),
) -> None:
    """Downgrade: decrypt and detokenise ``table``'s columns back to their old types.

    Values whose subject key was shredded cannot come back: they return as NULL, or as an
    empty value in NOT NULL columns.
    """
    from alembic import op

    if _offline_note(table, "unprotect"):
        return
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    sealed = [p for p in plans if p.kind != "token"]
    rows = 0 if op.get_context().as_sql else _count(conn, table, [p.column for p in plans])
    for b in blinds:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column(b.column)
    stage_cols = {p.column: sa.Text() for p in sealed}
    if rows:
        keyring = _keyring(conn, table, rows)
        read = sa.table(
            table,
            sa.column(pk, pk_type),
            *(
                sa.column(p.column, sa.String() if p.kind == "token" else sa.LargeBinary())
                for p in plans
            ),
        )
        stage = _stage(conn, table, pk, pk_type, stage_cols) if sealed else None
        vault = _vault()
        for batch in _batches(conn, read, pk):
            staged = []
            for r in batch:
                out: dict[str, Any] = {pk: getattr(r, pk)}
                for p in plans:
                    value = getattr(r, p.column)
                    if p.kind == "token":
                        continue
                    if value is None:
                        out[p.column] = None
                        continue
                    raw = bytes(value)
                    ctx = f"{table}.{p.column}".encode()
                    kind, key_id = aead.parse_header(raw)
                    if kind == aead.SUBJECT:
                        cipher = keyring.subject_cipher(key_id)
                        if cipher is None:
                            out[p.column] = None if p.nullable else SHREDDED_PLACEHOLDER[p.codec]
                            continue
                    else:
                        cipher = keyring.data_cipher(key_id, table, p.column)
                    out[p.column] = cipher.open(raw, ctx).decode("utf-8", "surrogatepass")
                staged.append(out)
            if stage is not None:
                conn.execute(stage.insert(), staged)
            for p in plans:
                if p.kind != "token":
                    continue
                toks = [getattr(r, p.column) for r in batch if is_token(getattr(r, p.column))]
                if not toks:
                    continue
                found = conn.execute(
                    sa.select(vault.c.token, vault.c.value).where(vault.c.token.in_(toks))
                ).all()
                plain = {
                    tok: keyring.data_cipher(aead.parse_header(bytes(v))[1], "token_vault", "value")
                    .open(bytes(v), b"token_vault.value")
                    .decode("utf-8", "surrogatepass")
                    for tok, v in found
                }
                write = sa.table(table, sa.column(p.column, sa.String()))
                conn.execute(
                    sa.update(write)
                    .where(write.c[p.column] == sa.bindparam("_t"))
                    .values({p.column: sa.bindparam("_v")}),
                    [{"_t": tok, "_v": v} for tok, v in plain.items()],
                )
                conn.execute(sa.delete(vault).where(vault.c.token.in_(list(plain))))
    if pg and rows and sealed:
        as_bytes = {p.column: sa.LargeBinary() for p in sealed}
        t = sa.table(
            table, sa.column(pk, pk_type), *(sa.column(c, sa.LargeBinary()) for c in as_bytes)
        )
        s = sa.table(
            f"_govern_stage_{table}",
            sa.column(pk, pk_type),
            *(sa.column(c, sa.Text()) for c in as_bytes),
        )
        values = {
            c: sa.select(sa.func.convert_to(s.c[c], "UTF8"))
            .where(s.c[pk] == t.c[pk])
            .scalar_subquery()
            for c in as_bytes
        }
        conn.execute(sa.update(t).values(values))
    with op.batch_alter_table(table) as batch_op:
        for p in sealed:
            pg_type = p.plain.compile(dialect=conn.dialect)
            batch_op.alter_column(
                p.column,
                existing_type=sa.LargeBinary(),
                type_=p.plain,
                existing_nullable=p.nullable,
                postgresql_using=f"convert_from({p.column}, 'UTF8')::{pg_type}",
            )
    if rows and sealed and not pg:
        _copy_from_stage(conn, table, pk, pk_type, {p.column: sa.Text() for p in sealed})
    if rows and stage is not None:
        stage.drop(conn)
