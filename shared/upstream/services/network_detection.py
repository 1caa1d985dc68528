"""The network part of a tenant's detector run: what the practice gives the network
(a signal when it saw a payer drift; its anonymised daily counts per payer) and what it gets
back (industry findings on its payers, from signals counted across practices or from the
pooled test on everyone's counts, `domain/detect/network_pool.py`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from upstream.domain.aggregates import AggregateFrame, build_frame
from upstream.domain.detect import network, network_pool
from upstream.domain.detect.findings import Finding
from upstream.domain.detect.network import tenant_token
from upstream.domain.payer_behavior.fingerprint import PRIOR_DAYS, RECENT_DAYS
from upstream.domain.payer_behavior.report import payer_report
from upstream.ports import NetworkStore

# A practice re-sends its last week each day: decisions posted late (an 835 of last Tuesday)
# and re-runs of a day settle its contribution, and each send overwrites its own entry.
CONTRIBUTED_DAYS = 7


def network_findings(customer: str, findings: list[Finding], frame: AggregateFrame,
                     as_of: date, store: NetworkStore | None,
                     network_key: Callable[[], bytes | None],
                     backfill_days: int = 0) -> list[Finding]:
    key = network_key() if store is not None else None
    if store is None or not key:
        return []
    token = tenant_token(key, customer)
    since = as_of - timedelta(days=network.WINDOW_DAYS)
    for finding in findings:
        if network.is_signal(finding) and finding.payer:
            store.signal(finding.payer, token, as_of)
            practices = network.network_change(store.signals(finding.payer, since), as_of)
            if practices:
                store.record_change(finding.payer, as_of, practices)
    # Daily, the last week; weekly, all the run reads (a practice that joins brings its
    # history, and a week of late-posted decisions is resent).
    _contribute(frame, token, as_of, backfill_days or CONTRIBUTED_DAYS, store)
    for payer in sorted(frame.payers):
        _pooled(payer, as_of, store)
    latest: dict[str, dict[str, Any]] = {}
    for change in store.changes(sorted(frame.payers), since):
        if str(change["day"]) <= as_of.isoformat():
            held = latest.setdefault(change["payer"], change)
            if change["practices"] > held["practices"]:
                latest[change["payer"]] = change
    return [network.industry_finding(payer, int(c["practices"]), date.fromisoformat(c["day"]),
                                     as_of, c.get("pooled")) for payer, c in sorted(latest.items())]


def _contribute(frame: AggregateFrame, token: str, as_of: date, days: int,
                store: NetworkStore) -> None:
    """Per payer and day: decided and denied lines, and the paid lines' lag histogram."""
    for payer in frame.payers:
        sent: dict[date, dict[str, Any]] = {}
        for offset in range(1, days + 1):
            day = as_of - timedelta(days=offset)
            end = day + timedelta(days=1)
            decided = frame.window(payer, "decided", day, end)
            if decided:
                lags = frame.lag_histogram(payer, day, end)
                sent[day] = {"decided": decided,
                             "denied": frame.window(payer, "denied", day, end),
                             "lag": {str(d): float(n) for d, n in enumerate(lags) if n}}
        if sent:
            store.contribute(payer, token, sent)


def _pooled(payer: str, as_of: date, store: NetworkStore) -> None:
    first = as_of - timedelta(days=network_pool.CHART_DAYS + network_pool.BASELINE_DAYS)
    verdict = network_pool.pooled_test(network_pool.daily_counts(store.pool(payer, first)),
                                       as_of)
    if verdict is None or not verdict.alarm or verdict.since is None:
        return
    store.record_change(payer, as_of, verdict.practices, {
        "since": verdict.since.isoformat(), "ratio": round(verdict.ratio or 0.0, 3),
        "statistic": round(verdict.statistic, 2), "threshold": round(verdict.threshold, 2),
        "days_tested": verdict.days_tested})


def network_payer_views(payers: list[str], as_of: date,
                        store: NetworkStore | None) -> dict[str, dict[str, Any]]:
    """Each payer as the network sees it: the fingerprint and archetype of the pooled
    counts of every practice billing it (days with at least 5 practices only), compared with
    the other payers this practice bills. Denials and lags only: prices differ by contract
    between practices, so no network price index is drawn."""
    if store is None or not payers:
        return {}
    first = as_of - timedelta(days=RECENT_DAYS + PRIOR_DAYS)
    cells = []
    practices: dict[str, int] = {}
    for payer in payers:
        raw = store.pool(payer, first)
        payer_cells = network_pool.network_cells(payer, raw)
        if payer_cells:
            cells += payer_cells
            practices[payer] = max(len(entries) for entries in raw.values())
    if not cells:
        return {}
    report = payer_report(build_frame(cells, first, as_of), as_of)
    keep = ("decided_recent", "denial_rate", "denial_rate_prior", "denial_trend_p_value",
            "days_to_payment", "days_to_payment_prior", "payment_trend_ks_p_value")
    return {entry["payer"]: {"archetype": entry["archetype"],
                             "practices": practices[entry["payer"]],
                             "fingerprint": {k: entry["fingerprint"].get(k) for k in keep},
                             "because": entry["evidence"]["because"]}
            for entry in report if entry["payer"] in practices}
