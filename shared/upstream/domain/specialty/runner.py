"""Every specialty check over a tenant's recent claim lines, with the tenant's settings
(`providers` with credential expiry dates, `visit_limits` per payer, `kx_thresholds` per
year, `esrd_base_rate_cents`, `home_health_episodes`). Findings follow Contract 4 and
merge into alerts like every detector's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from upstream.domain.detect.findings import Finding
from upstream.domain.risk.rules import RulesTable
from upstream.domain.specialty import aba, dialysis, home_health, imaging, pt


def specialty_findings(lines: Sequence[Mapping[str, Any]], tenant: Mapping[str, Any],
                       rules: RulesTable, run_day: date) -> list[Finding]:
    providers = tenant.get("providers") if isinstance(tenant.get("providers"), dict) else {}
    limits = tenant.get("visit_limits") if isinstance(tenant.get("visit_limits"), dict) else {}
    kx = tenant.get("kx_thresholds") if isinstance(tenant.get("kx_thresholds"), dict) else None
    episodes = tenant.get("home_health_episodes") or []
    rate = tenant.get("esrd_base_rate_cents")
    return [*aba.credential_mismatch(lines, run_day), *aba.units_over_time(lines, run_day),
            *aba.credential_expiry(lines, providers or {}, run_day),
            *pt.eight_minute_rule(lines, run_day), *pt.kx_missing(lines, run_day, kx),
            *pt.visit_limits(lines, limits or {}, run_day),
            *dialysis.ma_underpayment(lines, run_day,
                                      int(rate) if isinstance(rate, int) else None),
            *imaging.missing_prior_auth(lines, rules, run_day),
            *home_health.check_episodes(episodes if isinstance(episodes, list) else [],
                                        run_day)]
