"""The authorization calendar as pure code."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from upstream.domain.detect.authcal import (
    EXHAUSTING,
    EXPIRING,
    OVERUSED,
    AuthStatus,
    calendar,
    lead_days,
    link_usage,
    status,
)

RUN = date(2025, 12, 1)


def auth(number: str = "A1", *, ends_in: int = 60, units: float = 1000, payer: str = "Aetna",
         patient: str = "p1", started: int = 120, used: float | None = None) -> dict[str, Any]:
    return {"authorization_number": number, "patient_key": patient, "payer": payer,
            "service_type": "ABA", "cpt_codes": ["97153"], "units_authorized": units,
            "units_used": used, "start_date": (RUN - timedelta(days=started)).isoformat(),
            "end_date": (RUN + timedelta(days=ends_in)).isoformat()}


def sessions(number: str | None, per_day: float, days: int = 60, outcome: str = "PAID",
             patient: str = "p1") -> list[dict[str, Any]]:
    return [{"authorization_number": number, "patient_key": patient, "payer": "Aetna",
             "cpt": "97153", "units": per_day, "billed_cents": 3000 * int(per_day),
             "service_date": (RUN - timedelta(days=d)).isoformat(), "outcome": outcome}
            for d in range(1, days + 1)]


@pytest.mark.parametrize(("ends_in", "severity"), [
    (45, None), (30, "MEDIUM"), (15, "MEDIUM"), (14, "HIGH"), (4, "HIGH"), (3, "CRITICAL"),
    (0, "CRITICAL")])
def test_expiry_steps_30_14_3(ends_in: int, severity: str | None) -> None:
    found = [f for f in calendar([auth(ends_in=ends_in)], [], RUN) if f.type == EXPIRING]
    assert [f.severity for f in found] == ([severity] if severity else [])


def test_the_alert_carries_the_reauth_deadline_and_units() -> None:
    (found,) = calendar([auth(ends_in=20, payer="Medicaid")], sessions("A1", 2, 28), RUN)
    facts = found.metrics
    assert facts["reauth_lead_days"] == lead_days("Medicaid") == 30
    assert facts["reauth_deadline"] == (RUN + timedelta(days=20 - 30)).isoformat()
    assert facts["units_used"] == 56 and facts["units_authorized"] == 1000
    assert "already past" in found.summary
    assert facts["revenue_at_risk_dollars"] == pytest.approx(2 * 30 * 30.0)


def test_expired_and_renewed_authorizations_raise_nothing() -> None:
    old = auth("OLD", ends_in=-1)
    assert status(old, [old], RUN) is AuthStatus.EXPIRED
    ending = auth("A1", ends_in=10)
    renewal = {**auth("A2", ends_in=200), "start_date": (RUN + timedelta(days=11)).isoformat()}
    assert status(ending, [ending, renewal], RUN) is AuthStatus.RENEWED
    assert [f for f in calendar([old, ending, renewal], [], RUN)] == []


def test_units_running_out_before_the_end_date() -> None:
    a = auth(units=200, ends_in=60)
    found = [f for f in calendar([a], sessions("A1", 3, 60), RUN) if f.type == EXHAUSTING]
    (alert,) = found
    assert alert.metrics["units_remaining"] == 20
    # 20 units at 3 a day: the sixth day is the last one fully covered
    assert alert.metrics["projected_exhaustion"] == (RUN + timedelta(days=6)).isoformat()
    assert alert.severity == "HIGH"
    used_up = calendar([auth(units=180, ends_in=60)], sessions("A1", 3, 60), RUN)
    assert [(f.type, f.severity) for f in used_up] == [(EXHAUSTING, "CRITICAL")]
    assert "all 180 units are used" in used_up[0].title
    assert str(RUN) not in used_up[0].title  # "runs out on <today>" read as a future event


def test_units_rendered_beyond_the_authorization_are_critical_from_the_first_unit_over() -> None:
    (over,) = calendar([auth(units=100, ends_in=60)], sessions("A1", 3, 60), RUN)
    assert (over.type, over.severity) == (OVERUSED, "CRITICAL")
    assert over.metrics["units_over"] == 80
    # 60 days of 3 units, oldest first: the 34th unit-day crosses 100
    assert over.metrics["first_day_over"] == (RUN - timedelta(days=60 - 33)).isoformat()
    assert "80 units rendered beyond the 100 authorized" in over.title
    assert over.metrics["revenue_at_risk_dollars"] == pytest.approx(80 * 30.0)
    (one_over,) = calendar([auth(units=179, ends_in=200)], sessions("A1", 3, 60), RUN)
    assert (one_over.type, one_over.severity) == (OVERUSED, "CRITICAL")


def test_one_authorization_is_one_alert_led_by_its_worst_problem() -> None:
    """Ending in 3 days, out of units and over them: one finding, the over-use leads, every
    problem is listed in it."""
    (found,) = calendar([auth(units=100, ends_in=3)], sessions("A1", 3, 60), RUN)
    assert found.type == OVERUSED and found.severity == "CRITICAL"
    assert found.metrics["problems"] == [OVERUSED, EXPIRING]
    assert "ends in 3 days" in found.summary
    assert len(found.recommended_actions) == 3
    (both,) = calendar([auth(units=200, ends_in=10)], sessions("A1", 3, 60), RUN)
    assert both.metrics["problems"] == [EXHAUSTING, EXPIRING]  # both HIGH: units lead


def test_an_authorization_episode_follows_its_worst_problem_across_runs() -> None:
    from upstream.domain.detect.findings import merge_into_alerts

    first = merge_into_alerts("acme", calendar([auth(units=200, ends_in=20)],
                                               sessions("A1", 3, 58), RUN), [], RUN)
    assert [a.type for a in first] == [EXHAUSTING]
    later = RUN + timedelta(days=2)
    second = merge_into_alerts("acme", calendar(
        [auth(units=200, ends_in=18)], sessions("A1", 3, 60) + [
            {**s, "service_date": (later - timedelta(days=1)).isoformat()}
            for s in sessions("A1", 30, 1)], later), first, later)
    assert [(a.alert_id, a.type, a.severity) for a in second] == [
        (first[0].alert_id, OVERUSED, "CRITICAL")]


def test_enough_units_raise_nothing() -> None:
    assert calendar([auth(units=5000, ends_in=60)], sessions("A1", 3, 60), RUN) == []


def test_lines_without_a_number_link_by_patient_payer_and_code() -> None:
    usage = link_usage([auth()], sessions(None, 2, 10) + sessions(None, 2, 10, patient="p2"))
    assert sum(u.units for u in usage["A1"]) == 20


def test_denied_void_and_out_of_range_lines_consume_nothing() -> None:
    lines = (sessions("A1", 2, 10, outcome="DENIED") + sessions("A1", 2, 10, outcome="VOID")
             + [{**s, "service_date": "2020-01-01"} for s in sessions("A1", 2, 3)])
    assert link_usage([auth()], lines)["A1"] == []


def test_the_file_reported_units_count_when_larger() -> None:
    (found,) = [f for f in calendar([auth(units=300, used=290, ends_in=60)],
                                    sessions("A1", 1, 28), RUN) if f.type == EXHAUSTING]
    assert found.metrics["units_used"] == 290 and found.metrics["units_used_on_claims"] == 28


def test_a_future_authorization_is_not_judged() -> None:
    future = {**auth(ends_in=20), "start_date": (RUN + timedelta(days=5)).isoformat()}
    assert calendar([future], [], RUN) == []
