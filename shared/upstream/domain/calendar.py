"""US federal holidays: clinics close, payers do not process; both shape daily volumes."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@cache
def federal_holidays(year: int) -> frozenset[date]:
    mon, thu = 0, 3
    return frozenset({
        _observed(date(year, 1, 1)),
        _nth_weekday(year, 1, mon, 3),
        _nth_weekday(year, 2, mon, 3),
        _last_weekday(year, 5, mon),
        _observed(date(year, 6, 19)),
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, mon, 1),
        _nth_weekday(year, 10, mon, 2),
        _observed(date(year, 11, 11)),
        _nth_weekday(year, 11, thu, 4),
        _observed(date(year, 12, 25)),
    })


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in federal_holidays(day.year)


def add_business_days(day: date, days: int) -> date:
    while days > 0:
        day += timedelta(days=1)
        if is_business_day(day):
            days -= 1
    return day
