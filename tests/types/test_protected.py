"""Encrypted, token and blind-index types on a real SQLite file and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from govern.crypto import aead
from govern.crypto.keyring import bind
from govern.db import create_engine
from govern.errors import (
    KeyringNotBoundError,
    PlaintextRefusedError,
    TamperedValueError,
    UnknownKeyError,
)
from govern.keys.models import TokenVaultEntry
from govern.testing import memory_keyring
from govern.types import (
    BlindDigest,
    BlindIndex,
    EncryptedBytes,
    EncryptedDate,
    EncryptedDecimal,
    EncryptedJSON,
    EncryptedString,
    TokenString,
    lookup,
)


class Base(DeclarativeBase):
    metadata = MetaData()


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(EncryptedString())
    nick: Mapped[str | None] = mapped_column(EncryptedString())
    photo: Mapped[bytes | None] = mapped_column(EncryptedBytes())
    prefs: Mapped[Any] = mapped_column(EncryptedJSON(), nullable=True)
    born: Mapped[dt.date | None] = mapped_column(EncryptedDate())
    balance: Mapped[Decimal | None] = mapped_column(EncryptedDecimal())
    card: Mapped[str | None] = mapped_column(TokenString("card_number"))
    name_index: Mapped[bytes | None] = mapped_column(
        BlindIndex("name", bits=16, casefold=True), index=True
    )


KEYRING = memory_keyring()
DIALECT = sqlite.dialect()
bind(type("E", (), {"dialect": DIALECT})(), KEYRING)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=20,
)


@given(st.text())
def test_every_string_round_trips(value: str) -> None:
    typ = Person.__table__.c.name.type
    assert value == typ.process_result_value(typ.process_bind_param(value, DIALECT), DIALECT)


@given(st.binary())
def test_every_bytes_value_round_trips(value: bytes) -> None:
    typ = Person.__table__.c.photo.type
    assert value == typ.process_result_value(typ.process_bind_param(value, DIALECT), DIALECT)


@given(JSON_VALUES)
def test_every_json_value_round_trips(value: Any) -> None:
    typ = Person.__table__.c.prefs.type
    stored = typ.process_bind_param(value, DIALECT)
    assert json.dumps(value) == json.dumps(typ.process_result_value(stored, DIALECT))


@given(st.text(max_size=30), st.data())
def test_any_single_byte_change_of_a_stored_value_is_detected(
    value: str, data: st.DataObject
) -> None:
    typ = Person.__table__.c.name.type
    stored = bytearray(typ.process_bind_param(value, DIALECT))
    pos = data.draw(st.integers(0, len(stored) - 1))
    stored[pos] ^= data.draw(st.integers(1, 255))
    # A changed key id names a key the keyring lacks; any other change fails authentication.
    with pytest.raises((TamperedValueError, UnknownKeyError)):
        typ.process_result_value(bytes(stored), DIALECT)


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    eng = create_engine(empty_url)
    Base.metadata.create_all(eng)
    TokenVaultEntry.__table__.create(eng)  # tokens need govern's vault
    bind(eng, KEYRING)
    yield eng
    eng.dispose()


def test_orm_round_trip_and_blind_lookup(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add_all(
            [
                Person(
                    id=1,
                    name="Ann Smith",
                    photo=b"\x00\xff",
                    prefs={"a": [1, 2]},
                    born=dt.date(1990, 5, 17),
                    balance=Decimal("12.30"),
                    card="4111 1111 1111 4242",
                ),
                Person(id=2, name="Bob"),
                Person(id=3, name=None),
            ]
        )
    with Session(engine) as s:
        ann = s.get(Person, 1)
        assert ann is not None
        assert (ann.name, ann.photo, ann.prefs) == ("Ann Smith", b"\x00\xff", {"a": [1, 2]})
        assert (dt.date(1990, 5, 17), Decimal("12.30")) == (ann.born, ann.balance)
        assert ann.card is not None
        assert ann.card.endswith("_4242")
        assert [p.id for p in lookup(s, Person.name, "ANN SMITH")] == [1]
        assert [
            p.id for p in s.scalars(select(Person).where(Person.name_index == "ann smith"))
        ] == [1]
        assert lookup(s, Person.name, "Carol") == []
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT name, card FROM people WHERE id = 1")).one()
    assert b"Ann" not in bytes(raw[0])
    assert "4111" not in raw[1]


def test_value_copied_into_another_column_does_not_open(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(Person(id=1, name="Ann"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE people SET nick = name"))
    with Session(engine) as s, pytest.raises(TamperedValueError) as err:
        s.get(Person, 1)
    assert (err.value.table, err.value.column) == ("people", "nick")
    assert "Ann" not in str(err.value)


def test_plaintext_planted_by_raw_sql_is_a_typed_error(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO people (id, name) VALUES (1, :v)"), {"v": b"Ann"})
    with Session(engine) as s, pytest.raises(TamperedValueError, match=r"people\.name"):
        s.get(Person, 1)


def test_raw_card_number_through_core_is_refused(engine: Engine) -> None:
    # SQLAlchemy wraps errors raised while binding parameters; the govern error is .orig.
    with engine.begin() as conn, pytest.raises(StatementError) as err:
        conn.execute(Person.__table__.insert().values(id=1, card="4111111111114242"))
    assert isinstance(err.value.orig, PlaintextRefusedError)
    assert "4111" not in str(err.value)


def test_engine_without_keyring_refuses(empty_url: str) -> None:
    eng = create_engine(empty_url)
    Base.metadata.create_all(eng)
    try:
        with Session(eng) as s:
            s.add(Person(id=1, name="Ann"))
            with pytest.raises(KeyringNotBoundError, match=r"govern\.keys\.attach"):
                s.flush()
    finally:
        eng.dispose()


@pytest.mark.parametrize(
    "compare",
    [
        lambda c: c == "x",
        lambda c: c != "x",
        lambda c: c.in_(["x"]),
        lambda c: c.like("x%"),
        lambda c: c > "x",
    ],
)
def test_value_comparisons_on_sealed_columns_are_refused(compare) -> None:  # type: ignore[no-untyped-def]
    from govern.domains.analytics import AnalyticsSession
    from govern.domains.core import Subject
    from govern.errors import UnsearchableColumnError

    for column in (Subject.email, AnalyticsSession.ip_address):
        with pytest.raises(UnsearchableColumnError, match="blind index"):
            compare(column)


def test_null_tests_on_sealed_columns_still_work() -> None:
    from govern.domains.core import Subject

    assert "IS NULL" in str(Subject.email == None)  # noqa: E711
    assert "IS NOT NULL" in str(Subject.email.is_not(None))


def test_fast_processors_agree_with_the_slow_paths_and_follow_a_new_primary() -> None:
    keyring = memory_keyring(data_keys=2)
    dialect = sqlite.dialect()
    bind(type("E", (), {"dialect": dialect})(), keyring)
    typ = Person.__table__.c.name.type
    seal, open_ = typ.bind_processor(dialect), typ.result_processor(dialect, None)
    first, again = bytes(seal("Ann")), bytes(seal("Ann"))
    assert first != again  # a fresh nonce per value
    assert first[:5] == again[:5] == aead.header(aead.DATA, keyring.primary_id)
    assert open_(first) == typ.process_result_value(first, dialect) == "Ann"
    old_primary = keyring.primary_id
    keyring.add_data_key(99, bytes(range(32)), primary=True)
    rotated = bytes(seal("Ann"))
    assert rotated[:5] == aead.header(aead.DATA, 99) != aead.header(aead.DATA, old_primary)
    assert open_(rotated) == open_(first) == "Ann"
    with pytest.raises(TamperedValueError):
        open_(rotated[:-1] + bytes([rotated[-1] ^ 1]))
    blind = Person.__table__.c.name_index.type
    digest = blind.bind_processor(dialect)
    assert bytes(digest("Ann Smith")) == blind.process_bind_param("ANN SMITH", dialect)
    assert digest(None) is None


def test_a_prebuilt_blind_index_statement_hashes_each_value_as_it_is_bound(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add_all([Person(id=1, name="Ann Smith"), Person(id=2, name="Bob")])
    stmt = select(Person.id).where(Person.name_index == bindparam("v"))
    with Session(engine) as s:
        assert s.scalars(stmt, {"v": "ANN SMITH"}).all() == [1]
        assert s.scalars(stmt, {"v": "bob"}).all() == [2]
        assert s.scalars(stmt, {"v": "ann smith"}).all() == [1]


def test_a_loaded_digest_written_back_is_stored_as_is(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.add_all([Person(id=1, name="Ann"), Person(id=2, name="Bob")])
    with Session(engine) as s, s.begin():
        ann = s.get(Person, 1)
        assert ann is not None
        assert isinstance(ann.name_index, BlindDigest)
        s.execute(update(Person).where(Person.id == 2).values(name_index=ann.name_index))
    stmt = select(Person.id).where(Person.name_index == bindparam("v")).order_by(Person.id)
    with Session(engine) as s:
        assert s.scalars(stmt, {"v": "ann"}).all() == [1, 2]


class _Shouting(EncryptedString):
    """A subclass with its own codec: the fast paths must call it, not inline UTF-8."""

    cache_ok = True

    def encode(self, value: str) -> bytes:
        return value.upper().encode()

    def decode(self, raw: bytes) -> str:
        return "decoded:" + raw.decode()


def test_fast_processors_use_a_subclass_codec() -> None:
    table = Table("shouts", MetaData(), Column("id", Integer), Column("v", _Shouting()))
    typ = table.c.v.type
    sealed = typ.bind_processor(DIALECT)("Ann")
    assert typ.result_processor(DIALECT, None)(sealed) == "decoded:ANN"
    assert typ.process_result_value(sealed, DIALECT) == "decoded:ANN"
