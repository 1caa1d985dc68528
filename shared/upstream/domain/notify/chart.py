"""The small trend chart in an alert e-mail: a payer's weekly denial rate over 13 weeks and
the band its baseline allows, so the reader sees at a glance that the last week left it.

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

from upstream.domain.aggregates import DailyCell

WEEKS = 13
SIZE = (520, 200)
MARGIN = (44, 14, 14, 26)  # left, top, right, bottom
BAND_SE = 2.0


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


def render_png(points: list[WeekPoint]) -> bytes | None:
    """None when there is nothing to draw (no decided line in the window)."""
    rates = [p.rate for p in points]
    known = [r for r in rates if r is not None]
    base = baseline_rate(points)
    if not known or base is None:
        return None
    bands = [(max(0.0, base - BAND_SE * math.sqrt(base * (1 - base) / p.decided)),
              min(1.0, base + BAND_SE * math.sqrt(base * (1 - base) / p.decided)))
             if p.decided else (base, base) for p in points]
    top = min(1.0, max(known + [b[1] for b in bands]) * 1.15) or 0.1
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    left, upper, right, lower = MARGIN[0], MARGIN[1], SIZE[0] - MARGIN[2], SIZE[1] - MARGIN[3]
    step = (right - left) / max(1, len(points) - 1)

    def xy(i: int, value: float) -> tuple[float, float]:
        return left + i * step, lower - (value / top) * (lower - upper)

    band = [xy(i, hi) for i, (_, hi) in enumerate(bands)] + [
        xy(i, lo) for i, (lo, _) in reversed(list(enumerate(bands)))]
    draw.polygon(band, fill=(222, 232, 245))
    draw.line([xy(0, base), xy(len(points) - 1, base)], fill=(120, 140, 170), width=1)
    line = [xy(i, r) for i, r in enumerate(rates) if r is not None]
    if len(line) > 1:
        draw.line(line, fill=(30, 60, 120), width=2)
    for i, r in enumerate(rates):
        if r is None:
            continue
        outside = r > bands[i][1]
        x, y = xy(i, r)
        radius = 4 if outside else 2.5
        draw.ellipse((x - radius, y - radius, x + radius, y + radius),
                     fill=(200, 40, 40) if outside else (30, 60, 120))
    draw.line([(left, upper), (left, lower), (right, lower)], fill=(90, 90, 90))
    for value in (0.0, top / 2, top):
        draw.text((4, xy(0, value)[1] - 6), f"{value:.0%}", fill=(60, 60, 60))
    draw.text((left, lower + 8), points[0].start.isoformat(), fill=(60, 60, 60))
    draw.text((right - 64, lower + 8), points[-1].start.isoformat(), fill=(60, 60, 60))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
