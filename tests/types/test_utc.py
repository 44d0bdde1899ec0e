from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from govern.db import create_engine
from govern.types.utc import UTCDateTime

md = MetaData()
stamps = Table("stamps", md, Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))


@pytest.fixture
def engine(empty_url: str):  # type: ignore[no-untyped-def]
    eng = create_engine(empty_url)
    md.create_all(eng)
    yield eng
    eng.dispose()


AWARE = st.datetimes(
    min_value=dt.datetime(1970, 1, 2),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))]),
)


def test_round_trip_is_aware_utc(engine) -> None:  # type: ignore[no-untyped-def]
    @given(AWARE)
    def check(value: dt.datetime) -> None:
        with engine.begin() as conn:
            conn.execute(stamps.delete())
            conn.execute(insert(stamps).values(id=1, at=value))
            got = conn.execute(select(stamps.c.at)).scalar_one()
        assert got.tzinfo == dt.UTC
        assert value == got

    check()


def test_naive_datetime_is_refused(engine) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as conn:
        conn.execute(insert(stamps).values(id=1, at=dt.datetime(2024, 1, 1)))
