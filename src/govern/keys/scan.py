"""``govern scan encryption``: is every personal column protected, and is what is stored sound?

Two levels. The model: every column with a personal or financial data category must use an
encrypted, tokenised or shredded type. The database: every stored value must be a
well-formed envelope under a known data key (or a subject key), or a well-formed token. The
structural check runs in SQL over whole tables, so a plaintext row planted by raw SQL is
found however large the table; with a keyring, a sample of the newest values per column is
also decrypted, catching values that are well-formed but do not authenticate.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    MetaData,
    Text,
    case,
    func,
    inspect,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.engine import Engine

from govern.crypto import aead
from govern.crypto.keyring import Keyring
from govern.errors import CryptoError
from govern.keys.models import DataKey
from govern.keys.service import ProtectedColumn, protected_columns
from govern.types.token import TOKEN_LENGTH, is_token

PROTECTIONS = ("encrypted", "tokenised", "shredded")


class ModelGap(BaseModel):
    table: str
    column: str
    categories: list[str]
    type: str


class ColumnScan(BaseModel):
    table: str
    column: str
    protection: str
    rows: int
    bad: int
    sampled: int
    undecryptable: int

    @property
    def ok(self) -> bool:
        return self.bad == 0 and self.undecryptable == 0


class ScanReport(BaseModel):
    gaps: list[ModelGap]
    columns: list[ColumnScan]
    decrypted_sample: bool

    @property
    def ok(self) -> bool:
        return not self.gaps and all(c.ok for c in self.columns)

    def problems(self) -> list[str]:
        out = [
            f"{g.table}.{g.column} ({', '.join(g.categories)}) is stored as {g.type}, "
            "not encrypted, tokenised or shredded"
            for g in self.gaps
        ]
        for c in self.columns:
            if c.bad:
                out.append(
                    f"{c.table}.{c.column}: {c.bad} of {c.rows} value(s) are not {c.protection}"
                )
            if c.undecryptable:
                out.append(
                    f"{c.table}.{c.column}: {c.undecryptable} of {c.sampled} sampled value(s) "
                    "do not decrypt"
                )
        return out

    def text_lines(self) -> list[str]:
        lines = [
            f"{c.table + '.' + c.column:<38} {c.protection:<11} rows {c.rows:>8}  bad {c.bad:>4}  "
            f"sampled {c.sampled:>4}  undecryptable {c.undecryptable}"
            for c in self.columns
        ]
        problems = self.problems()
        if not problems:
            lines.append(
                f"ok: {len(self.columns)} protected column(s), no gaps"
                + ("" if self.decrypted_sample else " (structure only: GOVERN_KEK not set)")
            )
        lines += [f"GAP {p}" for p in problems]
        return lines


def model_gaps(metadata: MetaData) -> list[ModelGap]:
    """Personal or financial columns whose type does not protect them."""
    from govern.datamap import data_map

    gaps = []
    for entry in data_map(metadata):
        table = metadata.tables[entry.name]
        for col in entry.columns:
            kind = (col.protection or "").split("+")[0]
            if kind not in PROTECTIONS and kind not in ("pseudonymous", "inherited"):
                typ = table.c[col.name].type
                gaps.append(
                    ModelGap(
                        table=entry.name,
                        column=col.name,
                        categories=list(col.categories),
                        type=type(typ).__name__,
                    )
                )
    return gaps


def _bad_condition(pc: ProtectedColumn, value: Any, headers: list[bytes]) -> Any:
    if pc.protection == "tokenised":
        return not_((func.length(value) == TOKEN_LENGTH) & value.like("tok\\_%", escape="\\"))
    if pc.protection == "blind-index":
        return func.length(value) != pc.column.type.bits // 8  # type: ignore[attr-defined]
    header_ok: Any = (
        func.substr(value, 1, aead.HEADER_LEN).in_(headers) if headers else literal(False)
    )
    if pc.protection == "shredded":
        header_ok = or_(header_ok, func.substr(value, 1, 1) == bytes([aead.SUBJECT]))
    return not_((func.length(value) >= aead.OVERHEAD) & header_ok)


def _hex_bad(pc: ProtectedColumn, h: Any, headers: list[bytes], pg: bool) -> Any:
    """A copied value (hex text for binary columns, text for tokens) that is not sealed."""
    if pc.protection == "tokenised":
        return _bad_condition(pc, h, headers)
    not_hex = h.op("!~")("^[0-9A-Fa-f]*$") if pg else h.op("GLOB")("*[^0-9A-Fa-f]*")
    malformed = or_(not_hex, func.length(h) % 2 == 1)
    if pc.protection == "blind-index":
        return or_(malformed, func.length(h) != pc.column.type.bits // 4)  # type: ignore[attr-defined]
    prefix = func.upper(func.substr(h, 1, 2 * aead.HEADER_LEN))
    header_ok: Any = prefix.in_([x.hex().upper() for x in headers]) if headers else literal(False)
    if pc.protection == "shredded":
        header_ok = or_(header_ok, func.substr(h, 1, 2) == bytes([aead.SUBJECT]).hex())
    return or_(malformed, not_((func.length(h) >= 2 * aead.OVERHEAD) & header_ok))


def _scan_copies(
    conn: Any, metadata: MetaData, existing: set[str], headers: list[bytes]
) -> list[ColumnScan]:
    """Copies of rows (``sealed_copies(source_table=...)``): protected values still sealed.

    Checks, in SQL, every protected column of every source table inside the JSON copies,
    so a quarantined row planted or edited with plaintext is found like one in its source.
    """
    pg = conn.dialect.name == "postgresql"
    protected = protected_columns(metadata)
    out = []
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        for col in table.columns:
            source = col.info.get("source_table")
            if col.info.get("protection") != "inherited" or source is None:
                continue
            t = sa_table(table.name, sa_column(col.name, Text()), sa_column(source, Text()))
            doc, src = t.c[col.name], t.c[source]
            sources = set(conn.execute(select(src).distinct()).scalars())
            rows = bad = 0
            for pc in protected:
                name = pc.column.name
                if pc.table.name not in sources:
                    continue
                h: Any = (
                    doc.op("->>")(literal(name, Text))
                    if pg
                    else func.json_extract(doc, f'$."{name}"')
                )
                where = (src == pc.table.name, h.is_not(None))
                n, b = conn.execute(
                    select(
                        func.count(),
                        func.coalesce(
                            func.sum(case((_hex_bad(pc, h, headers, pg), 1), else_=0)), 0
                        ),
                    )
                    .select_from(t)
                    .where(*where)
                ).one()
                rows += int(n)
                bad += int(b)
            out.append(
                ColumnScan(
                    table=table.name,
                    column=col.name,
                    protection="inherited",
                    rows=rows,
                    bad=bad,
                    sampled=0,
                    undecryptable=0,
                )
            )
    return out


def _sample_check(pc: ProtectedColumn, blobs: list[Any], keyring: Keyring) -> int:
    bad = 0
    ctx = pc.name.encode()
    for blob in blobs:
        if pc.protection == "tokenised":
            bad += not is_token(blob)
            continue
        if pc.protection == "blind-index":
            continue
        raw = bytes(blob) if not isinstance(blob, str) else blob.encode()
        try:
            kind, key_id = aead.parse_header(raw)
            if kind == aead.SUBJECT:
                cipher = keyring.subject_cipher(key_id)
                if cipher is not None:
                    cipher.open(raw, ctx)
            else:
                keyring.data_cipher(key_id, pc.table.name, pc.column.name).open(raw, ctx)
        except CryptoError:
            bad += 1
    return bad


def scan_encryption(
    engine: Engine,
    keyring: Keyring | None = None,
    *,
    metadata: MetaData | None = None,
    sample: int = 200,
) -> ScanReport:
    """Scan the models and the database; ``keyring`` enables the decryption sample."""
    if metadata is None:
        from govern.db import load_models

        metadata = load_models()
    gaps = model_gaps(metadata)
    columns: list[ColumnScan] = []
    with engine.connect() as conn:
        existing = set(inspect(conn).get_table_names())
        dk = DataKey.__table__
        headers = []
        if DataKey.__tablename__ in existing:
            ids = conn.execute(
                select(dk.c.id).where(dk.c.purpose == "data", dk.c.state != "retired")
            ).scalars()
            headers = [aead.header(aead.DATA, int(i)) for i in ids]
        for pc in protected_columns(metadata):
            if pc.table.name not in existing:
                continue
            t, pk, value = pc.raw()
            rows = int(
                conn.execute(
                    select(func.count()).select_from(t).where(value.is_not(None))
                ).scalar_one()
            )
            bad = int(
                conn.execute(
                    select(func.count())
                    .select_from(t)
                    .where(value.is_not(None), _bad_condition(pc, value, headers))
                ).scalar_one()
            )
            sampled = undecryptable = 0
            if keyring is not None and sample > 0 and rows:
                blobs = list(
                    conn.execute(
                        select(value).where(value.is_not(None)).order_by(pk.desc()).limit(sample)
                    ).scalars()
                )
                sampled = len(blobs)
                undecryptable = _sample_check(pc, blobs, keyring)
            columns.append(
                ColumnScan(
                    table=pc.table.name,
                    column=pc.column.name,
                    protection=pc.protection,
                    rows=rows,
                    bad=bad,
                    sampled=sampled,
                    undecryptable=undecryptable,
                )
            )
        columns += _scan_copies(conn, metadata, existing, headers)
        conn.rollback()
    return ScanReport(gaps=gaps, columns=columns, decrypted_sample=keyring is not None)
