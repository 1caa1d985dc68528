"""An alert in the words a billing manager uses: what happened, what is at stake, what to do,
then the evidence in plain terms. Internal names (`cusum`, `billed_cents`, `design_effect`)
never reach a person; they stay in the JSON of the API and the webhook, for machines.

A metric is shown only when it has a label here: a new detector's numbers are not printed
raw by accident; they wait for words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

# Patient keys are HMAC hashes: eight characters are enough for staff to match a line in a
# list (collisions inside one alert's lines are practically nil), 64 are noise in a table.
PATIENT_KEY_CHARS = 8


def _percent(value: Any) -> str:
    return f"{float(value):.1%}"


def _dollars(value: Any) -> str:
    return f"${float(value):,.2f}"


def _count(value: Any) -> str:
    return f"{float(value):,.0f}"


def _days(value: Any) -> str:
    return f"{float(value):,.0f} days"


def _times(value: Any) -> str:
    return f"{float(value):.1f}×"


def _text(value: Any) -> str:
    return str(value)


# metric key → (label, format), in the order shown.
LABELS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "current_rate": ("Denial rate now", _percent),
    "baseline_rate": ("Denial rate before", _percent),
    "ratio": ("Change", _times),
    "current_denied": ("Lines denied now", _count),
    "current_decided": ("Lines decided now", _count),
    "baseline_denied": ("Lines denied before", _count),
    "baseline_decided": ("Lines decided before", _count),
    "current_denied_dollars": ("Denied this period", _dollars),
    "baseline_weekly_mean_dollars": ("Denied in a typical week", _dollars),
    "current_median_days": ("Days to payment now (median)", _days),
    "baseline_median_days": ("Days to payment before (median)", _days),
    "average_weekly_paid_dollars": ("Paid in a typical week", _dollars),
    "shift_since": ("Change began around", _text),
    "units_over": ("Units beyond the authorization", _count),
    "first_day_over": ("First session beyond it", _text),
    "units_remaining": ("Units left", _count),
    "projected_exhaustion": ("Units run out around", _text),
}
# Dollars at stake, most specific first.
AT_STAKE_KEYS = ("revenue_at_risk_dollars", "dollars_at_risk", "delayed_dollars",
                 "current_denied_dollars", "denied_dollars")


def at_stake(alert: Mapping[str, Any]) -> float | None:
    metrics = alert.get("metrics") or {}
    for key in AT_STAKE_KEYS:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value) and value > 0:
            return float(value)
    return None


def noise_chance(p_value: Any) -> str | None:
    """'about 1 in 10,000 chance this is noise': the p-value as odds, rounded to a figure a
    person can hold (one significant digit), capped where the model stops being that sure."""
    if not isinstance(p_value, (int, float)) or isinstance(p_value, bool) \
            or not math.isfinite(p_value) or p_value <= 0:
        return None
    if p_value >= 0.5:
        return "this could well be noise"
    odds = 1 / p_value
    if odds >= 1_000_000:
        return "less than 1 in a million chance this is noise"
    magnitude = 10 ** math.floor(math.log10(odds))
    rounded = int(round(odds / magnitude) * magnitude)
    return f"about 1 in {rounded:,} chance this is noise"


def lead(alert: Mapping[str, Any]) -> str:
    """What happened, in one sentence (the summary's first)."""
    summary = " ".join(str(alert.get("summary") or alert.get("title") or "").split())
    end = summary.find(". ")
    return summary if end < 0 else summary[:end + 1]


def stake_sentence(alert: Mapping[str, Any]) -> str | None:
    value = at_stake(alert)
    return None if value is None else f"At stake: about ${value:,.0f}."


def key_figures(alert: Mapping[str, Any]) -> list[tuple[str, str]]:
    metrics = alert.get("metrics") or {}
    rows = []
    for key, (label, show) in LABELS.items():
        value = metrics.get(key)
        if value is None or isinstance(value, (dict, list)):
            continue
        try:
            rows.append((label, show(value)))
        except (TypeError, ValueError):
            continue
    chance = noise_chance(metrics.get("p_value"))
    if chance:
        rows.append(("How sure we are", chance))
    elif metrics.get("cusum") is not None:  # a sequential alarm: its false-alarm design
        rows.append(("How sure we are", "the evidence crossed a line set for about one false "
                                        "alarm per payer every fourteen years"))
    return rows


def short_patient_key(value: Any) -> str:
    text = str(value or "")
    return text[:PATIENT_KEY_CHARS] + "…" if len(text) > PATIENT_KEY_CHARS else text
