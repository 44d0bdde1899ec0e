"""Deadlines: GDPR Art. 12(3) counted per Regulation 1182/71, and CCPA's 45 days."""

from __future__ import annotations

import calendar as cal_mod
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govern.dsr import WorkCalendar, add_months, due_at, parse_holidays
from govern.dsr.deadlines import last_day
from govern.errors import UsageError

UTC = WorkCalendar("UTC")


def at(y: int, m: int, d: int, h: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (dt.date(2026, 1, 15), 1, dt.date(2026, 2, 15)),
        (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29)),  # leap year
        (dt.date(2028, 1, 29), 1, dt.date(2028, 2, 29)),
        (dt.date(2027, 1, 29), 1, dt.date(2027, 2, 28)),
        (dt.date(2026, 3, 31), 1, dt.date(2026, 4, 30)),
        (dt.date(2026, 12, 31), 1, dt.date(2027, 1, 31)),
        (dt.date(2026, 11, 30), 3, dt.date(2027, 2, 28)),
        (dt.date(2027, 11, 30), 3, dt.date(2028, 2, 29)),
        (dt.date(2026, 2, 28), 1, dt.date(2026, 3, 28)),
    ],
)
def test_add_months(start: dt.date, months: int, expected: dt.date) -> None:
    assert expected == add_months(start, months)


@pytest.mark.parametrize(
    ("received", "expected_last_day"),
    [
        (at(2026, 1, 10), dt.date(2026, 2, 10)),  # Tuesday
        (at(2026, 1, 14), dt.date(2026, 2, 16)),  # 14 Feb 2026 is a Saturday -> Monday
        (at(2026, 1, 15), dt.date(2026, 2, 16)),  # Sunday -> Monday
        (at(2026, 1, 31), dt.date(2026, 3, 2)),  # 28 Feb 2026 is a Saturday -> Monday 2 March
        (at(2024, 1, 31), dt.date(2024, 2, 29)),  # leap day, a Thursday
        (at(2027, 11, 30), dt.date(2027, 12, 30)),
    ],
)
def test_gdpr_one_month_and_weekends(received: dt.datetime, expected_last_day: dt.date) -> None:
    assert expected_last_day == last_day(received, "gdpr", UTC, extended=False)
    assert dt.datetime.combine(
        expected_last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC
    ) == due_at(received, "gdpr", UTC)


def test_holidays_push_to_next_working_day() -> None:
    cal = WorkCalendar("UTC", parse_holidays("2026-12-24, 2026-12-25,2026-12-28"))
    # one month from 24 Nov 2026 is Thu 24 Dec (holiday), Fri 25 (holiday), weekend, Mon 28
    # (holiday) -> Tuesday 29 December
    assert dt.date(2026, 12, 29) == last_day(at(2026, 11, 24), "gdpr", cal, extended=False)


def test_time_of_day_and_time_zone() -> None:
    berlin = WorkCalendar("Europe/Berlin")
    # 23:30 UTC on 9 March is already 10 March in Berlin: the period counts from 10 March
    received = at(2026, 3, 9, 23, 30)
    assert dt.date(2026, 4, 10) == last_day(received, "gdpr", berlin, extended=False)
    # the period ends at local midnight after 10 April (CEST, UTC+2) = 22:00 UTC
    assert at(2026, 4, 10, 22, 0) == due_at(received, "gdpr", berlin)
    assert dt.date(2026, 4, 9) == last_day(received, "gdpr", UTC, extended=False)


def test_extension_to_three_months() -> None:
    assert dt.date(2026, 4, 30) == last_day(at(2026, 1, 31), "gdpr", UTC, extended=True)
    assert dt.date(2028, 2, 29) == last_day(at(2027, 11, 30), "gdpr", UTC, extended=True)


def test_ccpa_45_days_plus_45() -> None:
    received = at(2026, 1, 1)
    assert dt.date(2026, 2, 15) == last_day(received, "ccpa", UTC, extended=False)
    assert dt.date(2026, 4, 1) == last_day(received, "ccpa", UTC, extended=True)


def test_bad_inputs() -> None:
    with pytest.raises(UsageError, match="time zone"):
        WorkCalendar("Mars/Olympus")
    with pytest.raises(UsageError, match="ISO date"):
        parse_holidays("2026-13-01")
    with pytest.raises(UsageError, match="jurisdiction"):
        due_at(at(2026, 1, 1), "lgpd", UTC)
    with pytest.raises(UsageError, match="timezone-aware"):
        due_at(dt.datetime(2026, 1, 1), "gdpr", UTC)


dates = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2200, 12, 31))
holiday_sets = st.frozensets(dates, max_size=40)


@given(dates, st.integers(min_value=1, max_value=24))
def test_add_months_same_date_or_month_end(day: dt.date, months: int) -> None:
    out = add_months(day, months)
    assert (out.year * 12 + out.month) - (day.year * 12 + day.month) == months
    month_end = cal_mod.monthrange(out.year, out.month)[1]
    assert out.day == day.day or (out.day == month_end and day.day > month_end)


@given(dates, holiday_sets, st.booleans())
def test_gdpr_last_day_is_first_working_day_on_or_after_the_month(
    day: dt.date, holidays: frozenset[dt.date], extended: bool
) -> None:
    cal = WorkCalendar("UTC", holidays)
    received = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    plain = add_months(day, 3 if extended else 1)
    got = last_day(received, "gdpr", cal, extended=extended)
    assert got >= plain
    assert got.weekday() < 5
    assert got not in holidays
    # no working day was skipped between the plain date and the result
    skipped = [plain + dt.timedelta(days=i) for i in range((got - plain).days)]
    assert all(d.weekday() >= 5 or d in holidays for d in skipped)


@given(dates, st.times(), holiday_sets)
def test_deadline_after_receipt_and_extension_later(
    day: dt.date, time: dt.time, holidays: frozenset[dt.date]
) -> None:
    cal = WorkCalendar("UTC", holidays)
    received = dt.datetime.combine(day, time, tzinfo=dt.UTC)
    first = due_at(received, "gdpr", cal)
    assert first - received >= dt.timedelta(days=28)
    assert due_at(received, "gdpr", cal, extended=True) > first
    assert first.time() == dt.time(0)  # ends at a midnight, time-of-day precise
