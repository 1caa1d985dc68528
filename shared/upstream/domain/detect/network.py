"""Industry alerts (the network effect): when several practices see the same payer's denial
rate drift at the same time, it is the payer that changed, and every practice billing that
payer should know, including those whose own volume is too small to see it yet.

Privacy by construction: a practice contributes only a signal `(payer, day, opaque tenant
token)` — the token is an HMAC of its id under a key no tenant holds, so signals can be
counted as distinct without being attributable. The alert a practice receives says how many
practices saw the change and when, never who or their numbers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from upstream.domain.detect.findings import Finding, Severity, Window

TYPE = "industry_payer_change"
# Seeds: three or more practices within 48 hours.
MIN_PRACTICES = 3
WINDOW_DAYS = 2
# The drift types that count as a practice "seeing" a payer change.
SIGNAL_TYPES = frozenset({"denial_rate_drift"})


def tenant_token(key: bytes, customer_id: str) -> str:
    return hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()[:32]


def payer_token(payer: str) -> str:
    """Document id for a payer (names may hold '/'); not a secret."""
    return hashlib.sha256(payer.encode()).hexdigest()[:24]


def is_signal(finding: Finding) -> bool:
    return finding.type in SIGNAL_TYPES and finding.scope == "payer" and finding.payer is not None


def network_change(signals: Iterable[Mapping[str, Any]], run_day: date) -> int:
    """Distinct practices that signalled within the 48 hours before the run day's end; the
    count when it reaches the threshold, else 0."""
    first = run_day - timedelta(days=WINDOW_DAYS)
    tokens = {s["tenant"] for s in signals if first <= date.fromisoformat(str(s["day"])) <= run_day}
    return len(tokens) if len(tokens) >= MIN_PRACTICES else 0


def industry_finding(payer: str, practices: int, opened: date, run_day: date,
                     pooled: Mapping[str, Any] | None = None) -> Finding:
    if pooled:
        ratio = float(pooled.get("ratio") or 0)
        since = str(pooled.get("since") or opened.isoformat())
        title = f"{payer}: denial rates rising across {practices} practices' pooled claims"
        summary = (f"The claims of {practices} practices on Upstream, pooled, show {payer} "
                   f"denying about {ratio:.1f}× what each practice's own history predicts "
                   f"since {since}. No single practice's volume showed it yet; expect the "
                   "same on your claims.")
        metrics: dict[str, Any] = {"practices": practices, "since": since,
                                   "pooled_ratio": ratio, **{k: pooled[k] for k in (
                                       "statistic", "threshold", "days_tested") if k in pooled}}
        method = "network_pooled_cusum"
    else:
        title = f"{payer}: denial rates rising at {practices} practices this week"
        summary = (f"{practices} practices on Upstream saw {payer}'s denial rate drift within "
                   f"48 hours (from {opened}). The payer has likely changed a policy or an "
                   "edit; expect the same on your claims even if your volume does not show it "
                   "yet.")
        metrics = {"practices": practices, "since": opened.isoformat()}
        method = "network"
    return Finding(
        type=TYPE, payer=payer, scope="payer", severity=Severity.MEDIUM, method=method,
        title=title, summary=summary, metrics=metrics,
        evidence={"source": "anonymised counts and signals from other practices; no "
                            "practice's identity or claims are shared"},
        recommended_actions=[f"Check {payer}'s provider bulletins and policy updates.",
                             f"Hold or double-check pending {payer} claims for the usual "
                             "denial reasons before submitting."],
        window=Window(current_start=opened, current_end=run_day))
