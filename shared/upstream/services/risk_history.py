"""A tenant's denial history for scoring, kept per instance for a few minutes: a burst of
checks or change batches reuses it, and the aggregates behind it move once a day."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta

from upstream.domain.aggregates import DailyCell
from upstream.domain.risk.score import HISTORY_DAYS, DenialHistory

HISTORY_TTL_SECONDS = 600.0
HistoryCache = dict[tuple[str, date], tuple[float, DenialHistory]]


def cached_history(cache: HistoryCache, customer: str, today: date,
                   cells: Callable[[str, date, date], list[DailyCell]]) -> DenialHistory:
    found = cache.get((customer, today))
    if found and time.monotonic() - found[0] < HISTORY_TTL_SECONDS:
        return found[1]
    history = DenialHistory.from_cells(cells(customer, today - timedelta(days=HISTORY_DAYS),
                                             today), today)
    cache.clear()  # one tenant-day per instance is what a burst needs; memory stays bounded
    cache[(customer, today)] = (time.monotonic(), history)
    return history
