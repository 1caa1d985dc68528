"""Business days: clinics close and payers do not adjudicate on weekends and US federal
holidays (observed dates), so a claim submitted before Christmas is paid "late" in calendar
days without the payer having slowed down. Lags judged in business days do not move then.

The holiday dates come from the maintained `holidays` package (US federal, observed rule
included), not from rules of our own.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache, lru_cache

import holidays
import numpy as np
import numpy.typing as npt

# Years the calendar covers: claims data starts after 2000; a bound keeps the cache small.
FIRST_YEAR, LAST_YEAR = 2000, 2060


@cache
def federal_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("US", years=year, observed=True).keys())


@cache
def _holiday_array() -> npt.NDArray[np.datetime64]:
    days = sorted(d for y in range(FIRST_YEAR, LAST_YEAR + 1) for d in federal_holidays(y))
    return np.array(days, dtype="datetime64[D]")


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in federal_holidays(day.year)


def add_business_days(day: date, days: int) -> date:
    while days > 0:
        day += timedelta(days=1)
        if is_business_day(day):
            days -= 1
    return day


@lru_cache(maxsize=1 << 16)  # measured 4 % of ingest's CPU uncached; a file repeats its pairs
def business_days_between(start: date, end: date) -> int:
    """Business days d with start < d ≤ end: the working days a payer had to decide a claim
    submitted on `start` and decided on `end` (0 when decided the same or the next closed
    day). Negative spans count 0."""
    if end <= start:
        return 0
    return int(np.busday_count(np.datetime64(start + timedelta(days=1), "D"),
                               np.datetime64(end + timedelta(days=1), "D"),
                               holidays=_holiday_array()))


def business_days_array(start: npt.NDArray[np.datetime64],
                        end: npt.NDArray[np.datetime64]) -> npt.NDArray[np.int64]:
    """`business_days_between` over arrays of `datetime64[D]` (the benchmark's streams)."""
    one = np.timedelta64(1, "D")
    counted = np.busday_count(start + one, end + one, holidays=_holiday_array())
    return np.maximum(counted, 0).astype(np.int64)
