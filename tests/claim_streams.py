"""Synthetic stored claim-line documents with known payer behaviour, for the payer
intelligence tests: they go through `line_contribution` like real lines do."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

START = date(2025, 1, 6)  # a Monday
CPTS = (("97153", 3000, 8), ("97155", 4500, 4), ("97530", 4000, 3))


@dataclass(frozen=True)
class Behaviour:
    payer: str
    per_day: int = 12
    denial_rate: float = 0.08
    lag_days: int = 15
    price: float = 1.0  # allowed per unit relative to the practice's usual
    change_day: int | None = None  # from this day (index), the *_after values apply
    denial_after: float | None = None
    lag_after: int | None = None
    price_after: float | None = None
    price_cpt: str | None = None  # the price change reaches this code only


def documents(behaviour: Behaviour, days: int = 365, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(f"{behaviour.payer}-{seed}")
    out: list[dict[str, Any]] = []
    for index in range(days):
        submitted = START + timedelta(days=index)
        if submitted.weekday() >= 5:
            continue
        changed = behaviour.change_day is not None and index >= behaviour.change_day
        for line in range(behaviour.per_day):
            cpt, cents, units = rng.choice(CPTS)
            lag = (behaviour.lag_after if changed and behaviour.lag_after is not None
                   else behaviour.lag_days) + rng.randint(-3, 3)
            rate = (behaviour.denial_after if changed and behaviour.denial_after is not None
                    else behaviour.denial_rate)
            price = behaviour.price
            if changed and behaviour.price_after is not None and (
                    behaviour.price_cpt in (None, cpt)):
                price = behaviour.price_after
            plan = rng.choice((1.0, 1.0, 0.95, 1.05))  # a payer's plans price a little apart
            billed = cents * units
            allowed = round(cents * 0.72 * price * plan) * units
            denied = rng.random() < rate
            out.append({
                "payer": behaviour.payer, "cpt": cpt, "units": units,
                "submitted_date": submitted.isoformat(),
                "decided_date": (submitted + timedelta(days=max(1, lag))).isoformat(),
                "outcome": "DENIED" if denied else "PAID", "billed_cents": billed,
                "allowed_cents": allowed, "paid_cents": 0 if denied else allowed,
                "carc_codes": [rng.choice(("CO-197", "CO-16"))] if denied else ["CO-45"],
                "doc": f"{behaviour.payer}-{index}-{line}"})
    return out
