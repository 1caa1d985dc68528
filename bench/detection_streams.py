"""Simulated claim streams for the detection benchmark, with known injected changes.

Each stream is one practice: a dozen payers of different sizes, two years of claim lines
(the first is history only), weekday and federal-holiday volume, day-to-day overdispersion of
both volume (gamma-mixed Poisson) and denial rate (beta-mixed binomial), payment lags drawn
per line (log-normal) and counted on the decision day. A change is injected into one payer:
its denial rate (by decision day: a payer's policy applies when it adjudicates), one CPT's
rate, an expensive code's denials, its payment lag (by submission day), a gradual drift, or
the price it allows per unit of one code (a fee-schedule cut). Unit prices vary as real ones
do: each payer has three plans at different rates whose mix moves week to week, and one line
in twenty is reduced (multiple-procedure or partial-unit reductions).
Lines are aggregated into the same `DailyCell`s the aggregator keeps in Firestore.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from upstream.domain.aggregates import DailyCell
from upstream.domain.calendar import business_days_array, federal_holidays

_HOLIDAYS = np.array(sorted(d for y in range(2023, 2028) for d in federal_holidays(y)),
                     dtype="datetime64[D]")

START = date(2024, 1, 1)
DAYS = 731
CHANGE_DAY = 400  # early February of the second year
WEEKDAY = np.array([1.0, 1.05, 1.05, 1.0, 0.85, 0.1, 0.0])
VOLUME_CV = 0.25
RATE_ICC = 0.01  # daily denial-rate variation beyond binomial
ALLOWED_RATIO = 0.72
PLAN_RATES = np.array([1.0, 0.93, 1.06])  # a payer's plans, relative to its main rate
PLAN_MIX = np.array([0.6, 0.25, 0.15])
PLAN_MIX_CONCENTRATION = 60.0  # weekly Dirichlet: a plan's share moves by ~±6 points
REDUCED_SHARE, REDUCED_FACTOR = 0.05, 0.5

# cpt, cents per unit, mean units, denial rate relative to the payer's
CPTS = (("97153", 3000, 10, 1.0), ("97155", 4500, 5, 1.0), ("97156", 4500, 4, 1.0),
        ("97151", 5000, 14, 1.0), ("97154", 1200, 8, 1.0), ("97530", 4000, 3, 1.0),
        ("97110", 3500, 3, 1.0), ("97158", 1500, 4, 1.0),
        # A rare, expensive code (about once a week at the largest payer, ~$2,400 a line),
        # almost never denied: a few of its denials move a payer's week by thousands.
        ("0373T", 30000, 8, 0.25))
CPT_WEIGHTS = np.array([46, 18, 8, 2, 4, 12, 8, 1.5, 0.5], float) / 100
CARCS = ("CO-197", "CO-16", "CO-4", "CO-50", "CO-97", "CO-18")
# name, lines per business day, denial rate, median lag days
PAYERS = (("Big Commercial", 40, 0.08, 14), ("State Medicaid", 30, 0.12, 21),
          ("Blue Plan", 25, 0.06, 12), ("Aetna-like", 20, 0.07, 13),
          ("Cigna-like", 15, 0.09, 16), ("Humana-like", 12, 0.10, 18),
          ("Optum-like", 10, 0.11, 15), ("TRICARE-like", 8, 0.05, 24),
          ("Anthem-like", 6, 0.08, 13), ("Molina-like", 5, 0.14, 25),
          ("Magellan-like", 3, 0.09, 19), ("Small Local Plan", 2, 0.13, 28))


@dataclass(frozen=True, slots=True)
class Change:
    name: str
    kind: str  # rate | cpt | dollars | lag | gradual
    payer: str
    factor: float
    cpt: str | None = None
    ramp_days: int = 0
    plan: int | None = None  # price changes: only this plan of the payer's (index in PLAN_RATES)

    @property
    def start(self) -> date:
        return START + timedelta(days=CHANGE_DAY)


EVENTS = (
    Change("rate ×1.5, large payer", "rate", "Big Commercial", 1.5),
    Change("rate ×1.5, mid payer", "rate", "Cigna-like", 1.5),
    Change("rate ×2, small payer", "rate", "Anthem-like", 2.0),
    Change("one CPT jumps (97155 ×4)", "cpt", "Aetna-like", 4.0, "97155"),
    Change("one CPT jumps (97530 ×3)", "cpt", "State Medicaid", 3.0, "97530"),
    Change("expensive code denied (97151 ×6)", "dollars", "Big Commercial", 6.0, "97151"),
    Change("rare expensive code mostly denied (0373T 2% → 70%)", "dollars", "Big Commercial",
           35.0, "0373T"),
    Change("rate ×1.7, mid-size payer", "rate", "Humana-like", 1.7),
    Change("payment lag ×1.5", "lag", "Big Commercial", 1.5),
    Change("payment lag ×1.8", "lag", "Humana-like", 1.8),
    Change("gradual drift to ×2 over 60 days", "gradual", "Optum-like", 2.0, ramp_days=60),
    Change("fee cut 10% on 97153, large payer", "price", "Big Commercial", 0.9, "97153"),
    Change("fee cut 20% on 97155, mid payer", "price", "Cigna-like", 0.8, "97155"),
    Change("fee cut 10% on 97530, mid payer", "price", "Humana-like", 0.9, "97530"),
    Change("one plan's fee cut 20% on 97153 (a quarter of lines)", "price", "State Medicaid",
           0.8, "97153", plan=1),
)
# Which alert types count as catching each kind of change.
DETECTS = {"rate": {"denial_rate_drift", "denial_dollar_spike"},
           "gradual": {"denial_rate_drift", "denial_dollar_spike"},
           "cpt": {"denial_rate_drift", "denial_dollar_spike"},
           "dollars": {"denial_dollar_spike", "denial_rate_drift"},
           "lag": {"payment_delay"},
           "price": {"underpayment"}}


def _factor(change: Change | None, payer: str, day: np.ndarray, cpt: np.ndarray,
            kind: set[str]) -> np.ndarray:
    out = np.ones(len(day))
    if change is None or change.payer != payer or change.kind not in kind:
        return out
    after = day >= CHANGE_DAY
    if change.cpt is not None:
        after &= cpt == change.cpt
    if change.ramp_days:
        progress = np.clip((day - CHANGE_DAY) / change.ramp_days, 0, 1)
        return np.where(after, 1 + (change.factor - 1) * progress, 1.0)
    return np.where(after, change.factor, 1.0)


def _price_factor(change: Change | None, payer: str, day: np.ndarray, cpt: np.ndarray,
                  plan: np.ndarray) -> np.ndarray:
    factor = _factor(change, payer, day, cpt, {"price"})
    if change is not None and change.plan is not None:
        factor = np.where(plan == change.plan, factor, 1.0)
    return factor


def simulate(seed: int, change: Change | None, scale: float = 1.0) -> list[DailyCell]:
    """One practice's two years; `scale` multiplies every payer's volume (a smaller or larger
    practice)."""
    rng = np.random.default_rng(seed)
    holidays = {d for y in (2024, 2025, 2026) for d in federal_holidays(y)}
    calendar = [START + timedelta(days=i) for i in range(DAYS)]
    epoch = np.datetime64(START, "D")
    volume_shape = np.array([0.0 if d in holidays else WEEKDAY[d.weekday()] for d in calendar])
    frames = []
    for index, (payer, size, base_rate, lag_median) in enumerate(PAYERS):
        mean = size * scale * volume_shape * rng.gamma(1 / VOLUME_CV**2, VOLUME_CV**2, DAYS)
        per_day = rng.poisson(mean)
        submitted = np.repeat(np.arange(DAYS), per_day)
        n = len(submitted)
        cpt_index = rng.choice(len(CPTS), n, p=CPT_WEIGHTS)
        cpt = np.array([c[0] for c in CPTS])[cpt_index]
        units = np.maximum(1, rng.poisson(np.array([c[2] for c in CPTS])[cpt_index]))
        billed = np.array([c[1] for c in CPTS])[cpt_index] * units
        # The payer's median lag in calendar days is about 7/5 of its business days.
        lag = np.rint(rng.lognormal(np.log(lag_median * 5 / 7), 0.35, n)
                      * _factor(change, payer, submitted, cpt, {"lag"})).astype(int)
        submitted_day = epoch + submitted.astype("timedelta64[D]")
        decided_day = np.busday_offset(submitted_day, np.maximum(lag, 1), roll="forward",
                                       holidays=_HOLIDAYS)
        decided = (decided_day - epoch).astype(int)
        a = base_rate * (1 - RATE_ICC) / RATE_ICC
        daily_rate = rng.beta(a, (1 - base_rate) * (1 - RATE_ICC) / RATE_ICC, DAYS + 400)
        relative = np.array([c[3] for c in CPTS])[cpt_index]
        p = daily_rate[np.minimum(decided, DAYS + 399)] * relative * _factor(
            change, payer, decided, cpt, {"rate", "cpt", "dollars", "gradual"})
        denied = rng.random(n) < np.minimum(p, 0.95)
        carc_pool = [CARCS[(index + k) % len(CARCS)] for k in range(3)]
        carc = np.where(denied, rng.choice(carc_pool, n, p=[0.5, 0.3, 0.2]), "")
        if change is not None and change.payer == payer and change.kind in ("cpt", "dollars"):
            carc = np.where(denied & (cpt == change.cpt) & (decided >= CHANGE_DAY), "CO-4", carc)
        week = np.minimum(decided // 7, DAYS // 7 + 60)
        mix = rng.dirichlet(PLAN_MIX * PLAN_MIX_CONCENTRATION, DAYS // 7 + 61)[week]
        plan = (rng.random(n)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1)
        unit_price = (np.array([c[1] for c in CPTS])[cpt_index] * ALLOWED_RATIO
                      * PLAN_RATES[np.minimum(plan, 2)]
                      * np.where(rng.random(n) < REDUCED_SHARE, REDUCED_FACTOR, 1.0)
                      * _price_factor(change, payer, decided, cpt, plan))
        allowed = np.rint(unit_price * units).astype(int)
        frames.append(pd.DataFrame({
            "payer": payer, "day": decided, "cpt": cpt, "billed": billed, "denied": denied,
            "units": units, "allowed": allowed,
            "price_bin": np.rint(100 * np.log(np.maximum(allowed, 1) / units)).astype(int),
            "carc": carc, "lag": np.minimum(decided - submitted, 120),
            "blag": np.minimum(business_days_array(submitted_day, decided_day), 120),
            "paid": np.where(denied, 0, allowed)}))
    lines = pd.concat(frames)
    lines = lines[lines["day"] < DAYS]
    return _cells(lines)


def _cells(lines: pd.DataFrame) -> list[DailyCell]:
    counters: dict[tuple[str, int], dict[str, float]] = {}

    def add(group_cols: list[str], values: pd.DataFrame, name: str) -> None:
        for key, amount in values.items():
            payer, day, *code = key if isinstance(key, tuple) else (key,)
            field = name.format(*code)
            counters.setdefault((payer, day), {})[field] = float(amount)

    grouped = lines.groupby(["payer", "day"])
    add([], grouped.size(), "decided")
    add([], grouped["denied"].sum(), "denied")
    add([], grouped["billed"].sum(), "billed_cents")
    add([], lines[lines.denied].groupby(["payer", "day"])["billed"].sum(), "denied_cents")
    add([], (~lines.denied).groupby([lines.payer, lines.day]).sum(), "paid")
    add([], grouped["paid"].sum(), "paid_cents")
    by_cpt = lines.groupby(["payer", "day", "cpt"])
    add([], by_cpt.size(), "cpt.{}.decided")
    add([], by_cpt["denied"].sum(), "cpt.{}.denied")
    add([], by_cpt["billed"].sum(), "cpt.{}.billed_cents")
    add([], lines[lines.denied].groupby(["payer", "day", "cpt"])["billed"].sum(),
        "cpt.{}.denied_cents")
    denied = lines[lines.denied].groupby(["payer", "day", "carc"])
    add([], denied.size(), "carc.{}.denied")
    add([], denied["billed"].sum(), "carc.{}.denied_cents")
    add([], lines[~lines.denied].groupby(["payer", "day", "lag"]).size(), "lag.{}")
    add([], lines[~lines.denied].groupby(["payer", "day", "blag"]).size(), "blag.{}")
    paid = lines[~lines.denied].groupby(["payer", "day", "cpt"])
    add([], paid.size(), "cpt.{}.paid")
    add([], paid["units"].sum(), "cpt.{}.paid_units")
    add([], paid["allowed"].sum(), "cpt.{}.allowed_cents")
    add([], lines[~lines.denied].groupby(["payer", "day", "cpt", "price_bin"]).size(),
        "ppu.{}.{}")
    return [DailyCell(payer, START + timedelta(days=int(day)),
                      {k: v for k, v in fields.items() if v})
            for (payer, day), fields in counters.items()]
