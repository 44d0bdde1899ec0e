"""Legal response deadlines, counted the way the law counts them.

GDPR Art. 12(3) gives one month from receipt, extendable once to three months. Periods are
counted per Regulation (EEC, Euratom) No 1182/71: a period in months ends with the last
hour of the day in the last month bearing the same date as the day of receipt, or of the
last day of that month when no such date exists (Art. 3(2)(c)); when that last day is a
Saturday, Sunday or public holiday the period ends with the last hour of the following
working day (Art. 3(4)). CCPA/CPRA (Cal. Civ. Code §1798.130) gives 45 calendar days,
extendable once by 45.

Deadlines are instants (the first moment *after* the period), not bare dates, so that a
request received at 23:30 is compared to the clock with time-of-day precision.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from govern.errors import UsageError

JURISDICTIONS: tuple[str, ...] = ("gdpr", "ccpa")
"""``gdpr`` (EU/EEA and UK GDPR) and ``ccpa`` (California CCPA/CPRA)."""


@dataclass(frozen=True)
class WorkCalendar:
    """Where and when the controller works: a time zone, weekend days and public holidays.

    ``WorkCalendar("Europe/Berlin", holidays={dt.date(2026, 12, 25)})``
    """

    timezone: str = "UTC"
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    weekend: frozenset[int] = frozenset({5, 6})  # Monday is 0

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown time zone {self.timezone!r}") from None
        object.__setattr__(self, "holidays", frozenset(self.holidays))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() not in self.weekend and day not in self.holidays

    def next_working_day(self, day: dt.date) -> dt.date:
        """``day`` itself when it is a working day, else the first working day after it."""
        for _ in range(366):
            if self.is_working_day(day):
                return day
            day += dt.timedelta(days=1)
        raise UsageError("the calendar has no working day within a year")

    def end_of_day(self, day: dt.date) -> dt.datetime:
        """The instant the last hour of ``day`` expires (local midnight after it), in UTC."""
        nxt = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=self.zone)
        return nxt.astimezone(dt.UTC)

    def local_date(self, moment: dt.datetime) -> dt.date:
        if moment.tzinfo is None:
            raise UsageError("deadlines need timezone-aware times")
        return moment.astimezone(self.zone).date()


def parse_holidays(text: str) -> frozenset[dt.date]:
    """Holidays from ``"2026-12-25, 2026-12-26"``; a malformed date is a :class:`UsageError`."""
    days = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            days.add(dt.date.fromisoformat(part))
        except ValueError:
            raise UsageError(f"holiday {part[:20]!r} is not an ISO date (YYYY-MM-DD)") from None
    return frozenset(days)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same date ``months`` later, or the last day of that month when it has no such date."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = _calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day.day, last))


def last_day(
    received_at: dt.datetime, jurisdiction: str, cal: WorkCalendar, *, extended: bool
) -> dt.date:
    """The last day of the response period (after the working-day rule for GDPR)."""
    received = cal.local_date(received_at)
    if jurisdiction == "gdpr":
        return cal.next_working_day(add_months(received, 3 if extended else 1))
    if jurisdiction == "ccpa":
        return received + dt.timedelta(days=90 if extended else 45)
    raise UsageError(f"unknown jurisdiction {jurisdiction!r}; known: {', '.join(JURISDICTIONS)}")


def due_at(
    received_at: dt.datetime, jurisdiction: str, cal: WorkCalendar, *, extended: bool = False
) -> dt.datetime:
    """The instant the response period ends (UTC): a reply at or after it is late."""
    return cal.end_of_day(last_day(received_at, jurisdiction, cal, extended=extended))


def working_days(days: Iterable[dt.date], cal: WorkCalendar) -> list[dt.date]:
    return [d for d in days if cal.is_working_day(d)]
