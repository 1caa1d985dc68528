"""The pooled network test: a change no single small practice can see found from their sum,
nothing found on steady payers or on a shifting practice mix, the 5-practice floor."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from upstream.domain.detect import network_pool
from upstream.domain.detect.network_pool import MIN_PRACTICES, pooled_test
from upstream.services.network_detection import network_findings

RUN = date(2025, 9, 1)
START = RUN - timedelta(days=182)


def network(practices: int, lines: float, rates: list[float] | None = None,
            change: date | None = None, factor: float = 1.0, seed: int = 3,
            volume: dict[int, float] | None = None) -> dict[date, dict[str, tuple[float, float]]]:
    """Daily counts of `practices` practices, each about `lines` decided lines a weekday."""
    rng = random.Random(seed)
    rates = rates or [0.08 + 0.01 * (i % 4) for i in range(practices)]
    daily: dict[date, dict[str, tuple[float, float]]] = {}
    for offset in range(182):
        day = START + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        counts = {}
        for i in range(practices):
            mean = lines * (volume or {}).get(i, 1.0) * (2 if offset % 7 == 0 and volume else 1)
            n = max(0, round(rng.gauss(mean, mean ** 0.5)))
            p = rates[i] * (factor if change and day >= change else 1.0)
            x = sum(rng.random() < p for _ in range(n))
            counts[f"t{i}"] = (float(n), float(x))
        daily[day] = counts
    return daily


def test_fewer_than_five_practices_are_never_pooled() -> None:
    assert pooled_test(network(MIN_PRACTICES - 1, 20), RUN) is None
    assert pooled_test({}, RUN) is None


def test_steady_payers_raise_nothing() -> None:
    for seed in range(5):
        verdict = pooled_test(network(8, 6, seed=seed), RUN)
        assert verdict is not None and not verdict.alarm, seed


def test_a_change_too_small_for_each_practice_is_found_in_the_pool() -> None:
    change = RUN - timedelta(days=35)
    verdict = pooled_test(network(10, 4, change=change, factor=1.5), RUN)
    assert verdict is not None and verdict.alarm
    assert verdict.practices == 10 and verdict.ratio and verdict.ratio > 1.2
    assert verdict.since is not None and verdict.since >= change - timedelta(days=21)


def test_a_practice_mix_that_shifts_is_not_a_payer_change() -> None:
    rates = [0.04, 0.04, 0.04, 0.04, 0.25, 0.04]  # one high-denial practice ...
    daily = network(6, 8, rates=rates, volume={4: 1.0})  # ... submitting in bursts
    verdict = pooled_test(daily, RUN)
    assert verdict is not None and not verdict.alarm


def test_days_with_fewer_than_five_contributors_are_left_out() -> None:
    daily = network(6, 10)
    thin = {day: dict(list(counts.items())[:4]) for day, counts in daily.items()
            if day >= RUN - timedelta(days=30)}
    daily.update(thin)
    verdict = pooled_test(daily, RUN)
    assert verdict is not None
    full = pooled_test(network(6, 10), RUN)
    assert full is not None and verdict.days_tested < full.days_tested


counts = st.tuples(st.floats(0, 500), st.floats(0, 500)).map(
    lambda t: (max(t), min(t)))  # denied ≤ decided


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(0, 181), st.dictionaries(
    st.sampled_from([f"t{i}" for i in range(8)]), counts, max_size=8), max_size=60))
def test_the_test_never_raises_and_its_statistic_is_never_negative(
        raw: dict[int, dict[str, tuple[float, float]]]) -> None:
    daily = {START + timedelta(days=k): v for k, v in raw.items()}
    verdict = pooled_test(daily, RUN)
    assert verdict is None or verdict.statistic >= 0


# --- the run's network part, on a fake store -------------------------------------------------

class Store:
    def __init__(self, pool: dict[date, dict[str, tuple[float, float]]]) -> None:
        self.pooled = pool
        self.contributed: list[tuple[str, date, str, float, float]] = []  # payer, day, tenant
        self.recorded: list[tuple[str, date, int, dict[str, Any] | None]] = []

    def signal(self, payer: str, tenant: str, day: date) -> None: ...

    def signals(self, payer: str, since: date) -> list[dict[str, Any]]:
        return []

    def record_change(self, payer: str, day: date, practices: int,
                      pooled: dict[str, Any] | None = None) -> None:
        self.recorded.append((payer, day, practices, pooled))

    def changes(self, payers: Any, since: date) -> list[dict[str, Any]]:
        return [{"payer": p, "day": d.isoformat(), "practices": n, "pooled": pooled}
                for p, d, n, pooled in self.recorded if p in payers]

    def contribute(self, payer: str, tenant: str, days: dict[date, dict[str, Any]]) -> None:
        self.contributed += [(payer, day, tenant, e["decided"], e["denied"])
                             for day, e in days.items()]

    def pool(self, payer: str, since: date) -> dict[date, dict[str, dict[str, Any]]]:
        return {day: {t: {"decided": n, "denied": x} for t, (n, x) in counts.items()}
                for day, counts in self.pooled.items()}


def test_a_run_contributes_its_week_and_gets_the_pooled_finding() -> None:
    from upstream.domain.aggregates import DailyCell, build_frame

    pool = network(10, 4, change=RUN - timedelta(days=35), factor=1.5)
    store = Store(pool)
    cells = [DailyCell("Aetna", RUN - timedelta(days=d), {"decided": 5, "denied": 1})
             for d in range(1, 30)]
    frame = build_frame(cells, RUN - timedelta(days=60), RUN)
    found = network_findings("acme", [], frame, RUN, store, lambda: b"k" * 32)  # type: ignore[arg-type]
    assert len(store.contributed) == 7
    assert {c[2] for c in store.contributed} == {store.contributed[0][2]}  # one opaque token
    assert "acme" not in store.contributed[0][2]
    (finding,) = found
    assert finding.type == "industry_payer_change" and finding.method == "network_pooled_cusum"
    assert "pooled claims" in finding.title and finding.metrics["pooled_ratio"] > 1.2
    assert network_findings("acme", [], frame, RUN, store, lambda: None) == []  # type: ignore[arg-type]
    store.contributed.clear()
    network_findings("acme", [], frame, RUN, store, lambda: b"k" * 32, 60)  # type: ignore[arg-type]
    assert len(store.contributed) == 29  # a weekly run sends every day it read


def test_constants_keep_their_stated_meaning() -> None:
    assert network_pool.MIN_PRACTICES == 5 and network_pool.SHIFT == 1.5


def test_the_network_view_of_each_payer_needs_five_practices() -> None:
    from upstream.services.network_detection import network_payer_views

    rng = random.Random(4)
    pool: dict[str, dict[date, dict[str, dict[str, Any]]]] = {}
    behaviour = {"Aetna": (0.07, 14, 7), "Cigna": (0.08, 15, 7), "Humana": (0.09, 16, 7),
                 "Denier": (0.30, 15, 7), "Rare": (0.08, 15, 3)}  # rate, lag, practices
    for payer, (rate, lag, practices) in behaviour.items():
        days: dict[date, dict[str, dict[str, Any]]] = {}
        for offset in range(365):
            day = RUN - timedelta(days=365 - offset)
            if day.weekday() >= 5:
                continue
            entries = {}
            for i in range(practices):
                n = 4
                x = sum(rng.random() < rate for _ in range(n))
                entries[f"t{i}"] = {"decided": n, "denied": x,
                                    "lag": {str(lag + rng.randint(-2, 2)): n - x}}
            days[day] = entries
        pool[payer] = days

    class PoolStore(Store):
        def pool(self, payer: str, since: date) -> dict[date, dict[str, dict[str, Any]]]:
            return {d: e for d, e in pool.get(payer, {}).items() if d >= since}

    views = network_payer_views(sorted(behaviour), RUN, PoolStore({}))  # type: ignore[arg-type]
    assert "Rare" not in views  # three practices: never pooled
    assert views["Denier"]["archetype"] == "Aggressive Denier"
    assert views["Denier"]["practices"] == 7
    assert views["Aetna"]["fingerprint"]["days_to_payment"] is not None
    assert network_payer_views([], RUN, PoolStore({})) == {}  # type: ignore[arg-type]
