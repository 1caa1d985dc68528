"""Specialty checks: ABA credentials and units, PT's 8-minute rule, KX threshold and visit
limits, dialysis MA underpayment, imaging prior authorization, home-health NOA and F2F."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from upstream.domain.risk.rules import default_rules
from upstream.domain.specialty import aba, dialysis, home_health, imaging, pt
from upstream.domain.specialty.runner import specialty_findings

RUN = date(2025, 6, 30)


def line(**changes: Any) -> dict[str, Any]:
    base = {"claim_id": "C1", "line": 1, "payer": "Aetna", "patient_key": "p1", "cpt": "97153",
            "units": 4, "minutes": 60, "service_date": "2025-06-02", "billed_cents": 10000,
            "outcome": "PENDING", "provider_npi": "111", "provider_credential": "RBT"}
    return {**base, **changes}


@given(st.integers(0, 600))
def test_units_follow_the_midpoint_rule(minutes: int) -> None:
    units = aba.units_supported(minutes)
    assert units == (0 if minutes < 8 else (minutes + 7) // 15)
    assert aba.units_supported(minutes + 15) == units + (1 if minutes >= 8 else
                                                        aba.units_supported(minutes + 15))


def test_the_8_minute_table() -> None:
    assert [aba.units_supported(m) for m in (7, 8, 22, 23, 37, 38, 52, 53)] == \
        [0, 1, 1, 2, 2, 3, 3, 4]


def test_aba_credential_units_and_expiry() -> None:
    lines = [line(cpt="97155", units=2, minutes=30), line(cpt="97153", units=5, minutes=60),
             line(cpt="97153", minutes=None), line(cpt="97155", provider_credential="BCBA")]
    [mismatch] = aba.credential_mismatch(lines, RUN)
    assert mismatch.type == "aba_credential_mismatch" and mismatch.metrics["lines"] == 1
    [over] = aba.units_over_time(lines, RUN)
    assert over.metrics == {"lines": 1, "excess_units": 1.0}
    providers = {"111": {"credential": "BCBA", "expires": "2025-06-01"},
                 "222": {"credential": "BCBA", "expires": "2025-07-15"},
                 "333": {"credential": "BCBA", "expires": "not a date"}}
    found = {f.type: f for f in aba.credential_expiry(lines, providers, RUN)}
    assert found["aba_credential_expired"].metrics["lines"] == 4
    assert found["aba_credential_expiring"].metrics["days_left"] == 15


def test_pt_eight_minute_rule_counts_the_days_total() -> None:
    # 97110 20 min + 97140 20 min = 40 min → 3 units; billing 2 + 2 = 4 is one too many
    day_lines = [line(cpt="97110", units=2, minutes=20), line(cpt="97140", units=2, minutes=20)]
    [found] = pt.eight_minute_rule(day_lines, RUN)
    assert found.metrics == {"visits": 1, "excess_units": 1.0}
    assert pt.eight_minute_rule([line(cpt="97110", units=3, minutes=40)], RUN) == []
    assert pt.eight_minute_rule([line(cpt="97110", units=9, minutes=None)], RUN) == []


def test_kx_threshold_by_year_and_missing_kx() -> None:
    assert pt.kx_threshold(2025)[0] == 241000
    cents, source = pt.kx_threshold(2027)
    assert cents == 241000 and "used for 2027" in source
    assert pt.kx_threshold(2027, {"2027": 250000}) == (250000, "practice setting")
    visits = [line(payer="Medicare", cpt="97110", modifiers=["GP"], allowed_cents=30000,
                   service_date=(date(2025, 1, 6) + timedelta(days=7 * i)).isoformat(),
                   claim_id=f"V{i}") for i in range(10)]  # $3,000: crosses $2,410 at visit 9
    visits[9]["modifiers"] = ["GP", "KX"]
    [found] = pt.kx_missing(visits, RUN)
    assert found.metrics["lines"] == 1 and found.evidence["lines"][0]["claim_id"] == "V8"
    advantage = [{**v, "plan_type": "Medicare Advantage"} for v in visits]
    assert pt.kx_missing(advantage, RUN) == []


def test_visit_limits_per_payer() -> None:
    visits = [line(cpt="97110", service_date=f"2025-03-{d:02d}") for d in range(1, 22)]
    [found] = pt.visit_limits(visits, {"Aetna": 20}, RUN)
    assert found.evidence["patients"][0]["visits"] == 21
    assert pt.visit_limits(visits, {"Aetna": 30}, RUN) == []


def test_dialysis_ma_underpayment_below_minus_15_percent() -> None:
    def paid(cents: int, n: int = 12, **extra: Any) -> list[dict[str, Any]]:
        fields = {"payer": "Humana", "plan_type": "Medicare Advantage", "cpt": "90935",
                  "outcome": "PAID", "paid_cents": cents, **extra}
        return [line(claim_id=f"D{i}", **fields) for i in range(n)]
    [found] = dialysis.ma_underpayment(paid(20000), RUN)
    assert found.metrics["variance"] == round(20000 / 27382 - 1, 4)
    assert found.metrics["shortfall_dollars"] == round((27382 - 20000) * 12 / 100, 2)
    assert dialysis.ma_underpayment(paid(25000), RUN) == []  # −8.7%: inside the margin
    assert dialysis.ma_underpayment(paid(20000, n=5), RUN) == []  # too few treatments
    assert dialysis.ma_underpayment(paid(20000, plan_type="Commercial"), RUN) == []


def test_imaging_without_the_rbm_authorization() -> None:
    mri = [line(payer="Cigna", cpt="72148", billed_cents=300000, claim_id=f"M{i}")
           for i in range(2)] + [line(payer="Cigna", cpt="72148", authorization_number="E1")]
    [found] = imaging.missing_prior_auth(mri, default_rules(), RUN)
    assert found.severity == "HIGH" and found.evidence["program"] == "eviCore"
    aba_only = [line(cpt="97153", authorization_number=None)]  # the "*" ABA row: not imaging
    assert imaging.missing_prior_auth(aba_only, default_rules(), RUN) == []


def test_home_health_noa_and_f2f_windows() -> None:
    start = date(2025, 6, 1)
    assert home_health.noa_days_late(start, date(2025, 6, 6), RUN) == 0
    assert home_health.noa_days_late(start, date(2025, 6, 9), RUN) == 3
    assert home_health.noa_reduction_cents(start, date(2025, 6, 9), 300000) == 80000
    assert home_health.f2f_in_window(start, start - timedelta(days=90))
    assert not home_health.f2f_in_window(start, start + timedelta(days=31))
    assert not home_health.f2f_in_window(start, None)
    found = home_health.check_episodes([
        {"period_start": "2025-06-01", "start_of_care": "2025-06-01", "noa_date": "2025-06-09",
         "f2f_date": "2025-01-01", "payment_cents": 300000},
        {"period_start": "bad", "start_of_care": None}], RUN)
    assert {f.type for f in found} == {"home_health_noa_late", "home_health_f2f_window"}


def test_the_runner_tolerates_missing_or_malformed_settings() -> None:
    lines = [line(cpt="97155", units=9, minutes=30)]
    tenant = {"providers": "nonsense", "visit_limits": None, "home_health_episodes": "x"}
    kinds = {f.type for f in specialty_findings(lines, tenant, default_rules(), RUN)}
    assert kinds == {"aba_credential_mismatch", "aba_units_exceed_time"}
    assert specialty_findings([], {}, default_rules(), RUN) == []
