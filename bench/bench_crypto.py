"""Issue 3: encrypted columns against plain columns and sqlalchemy-utils, lookups, reencrypt.

Every ratio is measured side by side in one process on the same data (SQLite files):

- ORM insert and select of 100,000 rows, one ``EncryptedString`` column vs the same model with
  a plain ``String`` (targets: >= 0.45x insert, >= 0.5x select);
- the same against sqlalchemy-utils ``StringEncryptedType`` with ``AesGcmEngine``
  (``pip install govern[bench]``; targets: >= 1.5x insert, >= 4x select);
- blind-index equality lookup vs a plain indexed equality lookup (target >= 0.8x);
- ``keys reencrypt`` of one million values (target >= 50,000 values/s).

The ORM figures are dominated by the ORM's own per-row cost (building objects, identity map,
unit of work), which is the same for every column type: even a type that cost nothing could not
beat sqlalchemy-utils by more than ``ceiling_x`` (peer ORM time / plain ORM time), which each
ORM figure reports. So the run also measures the column type on its own, govern against
sqlalchemy-utils on the same 100,000 values:

- ``column_bind_per_value``: ``type.bind_processor(dialect)`` over every value (encrypt);
- ``column_result_per_value``: ``type.result_processor(dialect, None)`` over every stored
  value as the driver returns it (decrypt);
- ``core_select_column``: a Core ``select(Model.value)`` of the whole column (driver fetch and
  result processing, no ORM objects).

``GOVERN_BENCH_CRYPTO_ROWS`` / ``GOVERN_BENCH_CRYPTO_REENCRYPT`` shrink the sizes for a smoke run.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Integer, MetaData, String, bindparam, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bench.common import emit, sqlite_url, timed
from govern.crypto.keyring import bind
from govern.db import create_engine
from govern.keys import bind_keyring, reencrypt
from govern.testing import memory_keyring
from govern.types import BlindIndex, EncryptedString, lookup

PEER_KEY = "bench-peer-key"


class Base(DeclarativeBase):
    metadata = MetaData()


class Plain(Base):
    __tablename__ = "plain_rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class Sealed(Base):
    __tablename__ = "sealed_rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[str] = mapped_column(EncryptedString())


class PlainLookup(Base):
    __tablename__ = "plain_lookup"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(200), index=True)


class SealedLookup(Base):
    __tablename__ = "sealed_lookup"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(EncryptedString())
    email_index: Mapped[bytes] = mapped_column(BlindIndex("email", bits=32), index=True)


def _peer_model() -> type[Any] | None:
    try:
        from sqlalchemy_utils.types.encrypted.encrypted_type import (
            AesGcmEngine,
            StringEncryptedType,
        )
    except ImportError:
        return None

    class Peer(Base):
        __tablename__ = "peer_rows"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        value: Mapped[str] = mapped_column(StringEncryptedType(String, PEER_KEY, AesGcmEngine))

    return Peer


def _values(n: int) -> list[str]:
    rng = random.Random(3)  # noqa: S311  (benchmark data, not secrets)
    return [f"user{i}.{rng.randrange(10**9)}@example.com" for i in range(n)]


def _insert(engine: Engine, model: type[Any], values: list[str]) -> float:
    def run() -> None:
        with Session(engine) as s:
            s.execute(model.__table__.delete())
            s.add_all(model(id=i + 1, value=v) for i, v in enumerate(values))
            s.commit()

    return timed(run, repeat=2)


def _select(engine: Engine, model: type[Any]) -> float:
    def run() -> None:
        with Session(engine) as s:
            rows = s.scalars(select(model)).all()
            assert all(r.value for r in rows)

    return timed(run, repeat=3)


def _rate(n: int, seconds: float) -> float:
    return n / seconds


ORM_NOTE = "ORM per-row overhead dominates; see the column_* figures for the type's own cost"


def _orm_figures(engine: Engine, rows: int) -> list[dict[str, Any]]:
    values = _values(rows)
    out = []
    t_plain_ins = _insert(engine, Plain, values)
    t_enc_ins = _insert(engine, Sealed, values)
    t_plain_sel = _select(engine, Plain)
    t_enc_sel = _select(engine, Sealed)
    out.append(emit("orm_insert_encrypted_vs_plain", t_plain_ins / t_enc_ins, "x", target_min=0.45,
                    rows=rows, encrypted_rows_per_s=round(_rate(rows, t_enc_ins)),
                    plain_rows_per_s=round(_rate(rows, t_plain_ins))))  # fmt: skip
    out.append(emit("orm_select_encrypted_vs_plain", t_plain_sel / t_enc_sel, "x", target_min=0.5,
                    rows=rows, encrypted_rows_per_s=round(_rate(rows, t_enc_sel)),
                    plain_rows_per_s=round(_rate(rows, t_plain_sel))))  # fmt: skip
    peer = _peer_model()
    if peer is None:
        out.append(emit("vs_sqlalchemy_utils", 0, "skipped", reason="pip install govern[bench]"))
        return out
    peer.__table__.create(engine)
    t_peer_ins = _insert(engine, peer, values)
    t_peer_sel = _select(engine, peer)
    peer_ins, peer_sel = round(_rate(rows, t_peer_ins)), round(_rate(rows, t_peer_sel))
    # ceiling_x: the ratio a column type costing nothing would reach (peer time / plain time).
    out.append(emit("orm_insert_vs_sqlalchemy_utils_aesgcm", t_peer_ins / t_enc_ins, "x",
                    target_min=1.5, rows=rows, encrypted_rows_per_s=round(_rate(rows, t_enc_ins)),
                    peer_rows_per_s=peer_ins, ceiling_x=round(t_peer_ins / t_plain_ins, 2),
                    note=ORM_NOTE))  # fmt: skip
    out.append(emit("orm_select_vs_sqlalchemy_utils_aesgcm", t_peer_sel / t_enc_sel, "x",
                    target_min=4.0, rows=rows, encrypted_rows_per_s=round(_rate(rows, t_enc_sel)),
                    peer_rows_per_s=peer_sel, ceiling_x=round(t_peer_sel / t_plain_sel, 2),
                    note=ORM_NOTE))  # fmt: skip
    out += _column_figures(engine, peer, values)
    return out


def _column_figures(engine: Engine, peer: type[Any], values: list[str]) -> list[dict[str, Any]]:
    """The column type's own cost per value, govern vs sqlalchemy-utils on the same values.

    Both tables were filled by the ORM figures; the stored values are read back raw (as the
    driver returns them) so the result processors see exactly what a query hands them.
    """
    n = len(values)
    dialect = engine.dialect
    ours, theirs = Sealed.__table__.c.value, peer.__table__.c.value

    def stored(table: str) -> list[Any]:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT value FROM {table} ORDER BY id")  # noqa: S608
            return [r[0] for r in rows]

    def binder(column: Any) -> Callable[[], Any]:
        process = column.type.bind_processor(dialect)
        return lambda: [process(v) for v in values]

    def reader(column: Any, raw: list[Any]) -> Callable[[], Any]:
        process = column.type.result_processor(dialect, None)
        return lambda: [process(v) for v in raw]

    def core(column: Any) -> Callable[[], Any]:
        def run() -> None:
            with engine.connect() as conn:
                got = conn.execute(select(column).order_by(column.table.c.id)).scalars().all()
                assert len(got) == n
                assert got[0] == values[0]

        return run

    ours_raw, theirs_raw = stored("sealed_rows"), stored("peer_rows")
    assert reader(ours, ours_raw)() == values
    assert reader(theirs, theirs_raw)() == values
    out = []
    for name, ours_fn, theirs_fn, target in (
        ("column_bind_per_value_vs_sqlalchemy_utils_aesgcm", binder(ours), binder(theirs), 1.5),
        ("column_result_per_value_vs_sqlalchemy_utils_aesgcm",
         reader(ours, ours_raw), reader(theirs, theirs_raw), 4.0),
        ("core_select_column_vs_sqlalchemy_utils_aesgcm", core(ours), core(theirs), 4.0),
    ):  # fmt: skip
        t_ours, t_theirs = timed(ours_fn, repeat=5), timed(theirs_fn, repeat=5)
        out.append(emit(name, t_theirs / t_ours, "x", target_min=target, values=n,
                        encrypted_us_per_value=round(t_ours / n * 1e6, 3),
                        peer_us_per_value=round(t_theirs / n * 1e6, 3)))  # fmt: skip
    t_plain_core = timed(core(Plain.__table__.c.value), repeat=5)
    t_ours_core = timed(core(ours), repeat=5)
    out.append(emit("core_select_column_encrypted_vs_plain", t_plain_core / t_ours_core, "x",
                    values=n, encrypted_us_per_value=round(t_ours_core / n * 1e6, 3),
                    plain_us_per_value=round(t_plain_core / n * 1e6, 3)))  # fmt: skip
    return out


def _lookup_figure(engine: Engine, rows: int, lookups: int = 2000) -> dict[str, Any]:
    values = _values(rows)
    with Session(engine) as s:
        s.execute(insert(PlainLookup), [{"id": i + 1, "email": v} for i, v in enumerate(values)])
        s.add_all(SealedLookup(id=i + 1, email=v) for i, v in enumerate(values))
        s.commit()
    rng = random.Random(7)  # noqa: S311
    wanted = [rng.choice(values) for _ in range(lookups)]

    def plain() -> None:
        with Session(engine) as s:
            for v in wanted:
                assert s.scalars(select(PlainLookup).where(PlainLookup.email == v)).first()

    # lookup() reuses one statement per attribute; the same courtesy for the plain lookup.
    prebuilt = select(PlainLookup).where(PlainLookup.email == bindparam("v"))

    def plain_prebuilt() -> None:
        with Session(engine) as s:
            for v in wanted:
                assert s.scalars(prebuilt, {"v": v}).first()

    def blind() -> None:
        with Session(engine) as s:
            for v in wanted:
                assert lookup(s, SealedLookup.email, v)

    t_plain, t_blind = timed(plain, repeat=3), timed(blind, repeat=3)
    t_prebuilt = timed(plain_prebuilt, repeat=3)
    return emit("blind_index_lookup_vs_plain_indexed", t_plain / t_blind, "x", target_min=0.8,
                rows=rows, lookups=lookups, blind_lookups_per_s=round(lookups / t_blind),
                plain_lookups_per_s=round(lookups / t_plain),
                plain_prebuilt_lookups_per_s=round(lookups / t_prebuilt),
                vs_plain_prebuilt_x=round(t_prebuilt / t_blind, 4))  # fmt: skip


def _reencrypt_figure(url: str, n: int) -> dict[str, Any]:
    engine = create_engine(url)
    md = MetaData()

    class Rb(DeclarativeBase):
        metadata = md

    class Row(Rb):
        __tablename__ = "reencrypt_rows"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        value: Mapped[str] = mapped_column(EncryptedString())

    md.create_all(engine)
    keyring = memory_keyring(data_keys=2)
    old = keyring.data_cipher(1)
    ctx = b"reencrypt_rows.value"
    raw = Row.__table__
    with engine.begin() as conn:
        batch: list[dict[str, Any]] = []
        for i in range(n):
            batch.append({"id": i + 1, "value": old.seal(f"value-{i}".encode(), ctx)})
            if len(batch) == 50_000:
                conn.exec_driver_sql(
                    "INSERT INTO reencrypt_rows (id, value) VALUES (?, ?)",
                    [(r["id"], r["value"]) for r in batch],
                )
                batch = []
        if batch:
            conn.exec_driver_sql(
                "INSERT INTO reencrypt_rows (id, value) VALUES (?, ?)",
                [(r["id"], r["value"]) for r in batch],
            )
    bind_keyring(engine, keyring)
    t0 = time.perf_counter()
    result = reencrypt(engine, keyring, batch_size=5000, metadata=md)
    seconds = time.perf_counter() - t0
    assert result.values == n, result
    with Session(engine) as s:
        assert s.scalars(select(Row.value).where(Row.id == n)).one() == f"value-{n - 1}"
    del raw
    engine.dispose()
    return emit("keys_reencrypt_sqlite", n / seconds, "values/s", target_min=50_000, values=n)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def run() -> list[dict[str, Any]]:
    rows = _env_int("GOVERN_BENCH_CRYPTO_ROWS", 100_000)
    million = _env_int("GOVERN_BENCH_CRYPTO_REENCRYPT", 1_000_000)
    out = []
    with sqlite_url() as url:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        bind(engine, memory_keyring())
        out += _orm_figures(engine, rows)
        out.append(_lookup_figure(engine, rows))
        engine.dispose()
    with sqlite_url() as url:
        out.append(_reencrypt_figure(url, million))
    return out


_: Callable[..., Any] = run
