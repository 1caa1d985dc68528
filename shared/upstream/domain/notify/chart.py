"""The small trend charts in an alert e-mail and on the dashboard: a payer's weekly denial
rate over 13 weeks and the band its baseline allows, so the reader sees at a glance that the
last week left it; on the dashboard also the weeks an alert was raised (triangles) and the
weekly median payment lag.

Band: the baseline rate p (all weeks but the last, pooled) ± 2 binomial standard errors of
each week's own volume, sqrt(p(1-p)/n). A week outside it is unlikely under the baseline
alone (≈ 5% two-sided); the detectors' own tests are stricter and are in the evidence table.
Drawn with Pillow: no plotting stack in a function that only needs one small PNG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from PIL import Image, ImageDraw

from upstream.domain.aggregates import LAG_CAP_DAYS, DailyCell

WEEKS = 13
SIZE = (520, 200)
MARGIN = (44, 14, 14, 26)  # left, top, right, bottom
BAND_SE = 2.0
INK = (60, 60, 60)
LINE = (30, 60, 120)
ALERT = (200, 40, 40)


@dataclass(frozen=True, slots=True)
class WeekPoint:
    start: date
    decided: float
    denied: float

    @property
    def rate(self) -> float | None:
        return self.denied / self.decided if self.decided else None


def weekly_points(cells: Iterable[DailyCell], payer: str, end: date,
                  weeks: int = WEEKS) -> list[WeekPoint]:
    """Weeks ending the day before `end`, oldest first."""
    first = end - timedelta(days=7 * weeks)
    decided = [0.0] * weeks
    denied = [0.0] * weeks
    for cell in cells:
        if cell.payer != payer or not first <= cell.day < end:
            continue
        index = (cell.day - first).days // 7
        decided[index] += float(cell.counters.get("decided", 0) or 0)
        denied[index] += float(cell.counters.get("denied", 0) or 0)
    return [WeekPoint(first + timedelta(days=7 * i), decided[i], denied[i])
            for i in range(weeks)]


def baseline_rate(points: list[WeekPoint]) -> float | None:
    decided = sum(p.decided for p in points[:-1])
    return sum(p.denied for p in points[:-1]) / decided if decided else None


def render_png(points: list[WeekPoint], markers: Iterable[int] = (),
               baseline: float | None = None) -> bytes | None:
    """None when there is nothing to draw (no decided line in the window). `markers` are the
    indexes of weeks in which an alert on this payer was raised; `baseline` is the rate the
    alert's detector compared with (its own baseline window), drawn instead of the chart's
    pooled weeks, so the chart and the alert say the same number."""
    rates = [p.rate for p in points]
    known = [r for r in rates if r is not None]
    base = baseline if baseline is not None else baseline_rate(points)
    if not known or base is None:
        return None
    bands = [(max(0.0, base - BAND_SE * math.sqrt(base * (1 - base) / p.decided)),
              min(1.0, base + BAND_SE * math.sqrt(base * (1 - base) / p.decided)))
             if p.decided else (base, base) for p in points]
    top = min(1.0, max(known + [b[1] for b in bands]) * 1.15) or 0.1
    canvas = _Canvas(len(points), top)
    band = [canvas.xy(i, hi) for i, (_, hi) in enumerate(bands)] + [
        canvas.xy(i, lo) for i, (lo, _) in reversed(list(enumerate(bands)))]
    canvas.draw.polygon(band, fill=(222, 232, 245))
    canvas.draw.line([canvas.xy(0, base), canvas.xy(len(points) - 1, base)],
                     fill=(120, 140, 170), width=1)
    canvas.series(rates, [r is not None and r > bands[i][1] for i, r in enumerate(rates)])
    for index in sorted(set(markers)):
        if 0 <= index < len(points):
            x, _ = canvas.xy(index, top)
            canvas.draw.polygon([(x - 5, canvas.upper), (x + 5, canvas.upper),
                                 (x, canvas.upper + 8)], fill=ALERT)
    canvas.axes([f"{value:.0%}" for value in (0.0, top / 2, top)], points)
    return canvas.png()


def weekly_lag(cells: Iterable[DailyCell], payer: str, end: date,
               weeks: int = WEEKS) -> list[float | None]:
    """Median days from submission to payment of the lines paid in each week (oldest first),
    None for a week without one: read from the aggregates' lag histogram (`lag.<days>`)."""
    first = end - timedelta(days=7 * weeks)
    histograms = [[0.0] * (LAG_CAP_DAYS + 1) for _ in range(weeks)]
    for cell in cells:
        if cell.payer != payer or not first <= cell.day < end:
            continue
        index = (cell.day - first).days // 7
        for name, count in cell.counters.items():
            if name.startswith("lag.") and name[4:].isdigit() and int(name[4:]) <= LAG_CAP_DAYS:
                histograms[index][int(name[4:])] += float(count or 0)
    return [_median(h) for h in histograms]


def _median(histogram: list[float]) -> float | None:
    total = sum(histogram)
    if total <= 0:
        return None
    seen = 0.0
    for days, count in enumerate(histogram):
        seen += count
        if seen >= total / 2:
            return float(days)
    return float(len(histogram) - 1)


def render_lag_png(points: list[WeekPoint], lags: list[float | None]) -> bytes | None:
    """The weekly median lag line; `points` give the week labels. None when nothing was paid."""
    known = [v for v in lags if v is not None]
    if not known:
        return None
    top = max(known) * 1.2 or 10.0
    canvas = _Canvas(len(lags), top)
    canvas.series(lags, [False] * len(lags))
    canvas.axes([f"{value:.0f} d" for value in (0.0, top / 2, top)], points)
    return canvas.png()


class _Canvas:
    """One chart's image and its value → pixel mapping."""

    def __init__(self, count: int, top: float) -> None:
        self.image = Image.new("RGB", SIZE, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.left, self.upper = MARGIN[0], MARGIN[1]
        self.right, self.lower = SIZE[0] - MARGIN[2], SIZE[1] - MARGIN[3]
        self.count, self.top = count, top
        self.step = (self.right - self.left) / max(1, count - 1)

    def xy(self, i: int, value: float) -> tuple[float, float]:
        height = self.lower - self.upper
        return self.left + i * self.step, self.lower - (value / self.top) * height

    def series(self, values: list[float | None], flagged: list[bool]) -> None:
        line = [self.xy(i, v) for i, v in enumerate(values) if v is not None]
        if len(line) > 1:
            self.draw.line(line, fill=LINE, width=2)
        for i, value in enumerate(values):
            if value is None:
                continue
            x, y = self.xy(i, value)
            radius = 4 if flagged[i] else 2.5
            self.draw.ellipse((x - radius, y - radius, x + radius, y + radius),
                              fill=ALERT if flagged[i] else LINE)

    def axes(self, labels: list[str], points: list[WeekPoint]) -> None:
        self.draw.line([(self.left, self.upper), (self.left, self.lower),
                        (self.right, self.lower)], fill=(90, 90, 90))
        for label, value in zip(labels, (0.0, self.top / 2, self.top), strict=True):
            self.draw.text((4, self.xy(0, value)[1] - 6), label, fill=INK)
        self.draw.text((self.left, self.lower + 8), points[0].start.isoformat(), fill=INK)
        self.draw.text((self.right - 64, self.lower + 8), points[-1].start.isoformat(), fill=INK)

    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, format="PNG", optimize=True)
        return out.getvalue()
