"""The home page's gains: each figure counted the way its docstring says, and shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.unit.test_dashboard import request
from tests.unit.test_notify import alert
from tests.unit.test_people import people_dashboard, person_cookie
from upstream.domain.practice.gains import gains, line_doc_ids
from upstream.domain.records import claim_line_doc_id


def _line(claim: str, outcome: str = "DENIED", **extra: object) -> dict[str, object]:
    return {"claim_id": claim, "line": 1, "line_key": "L1", "outcome": outcome, **extra}


def test_flagged_recovered_and_renewed_count_only_what_they_say() -> None:
    raised = alert(alert_id="a1", status="acknowledged", first_seen="2025-12-01",
                   metrics={"excess_denied_dollars": 1200.0},
                   evidence={"affected_lines": [_line("C1"), _line("C2"), _line("C3"),
                                                _line("C4", outcome="PAID")]})
    noise = alert(alert_id="a2", status="noise", metrics={"excess_denied_dollars": 999.0},
                  evidence={"affected_lines": [_line("C5")]})
    paid_after = {"outcome": "PAID", "decided_date": "2025-12-20", "paid_cents": 9000}
    now: dict[str, dict[str, Any]] = {
        claim_line_doc_id("C1", "L1"): paid_after,
        claim_line_doc_id("C2", "L1"): {"outcome": "PAID", "decided_date": "2025-11-20",
                                        "paid_cents": 5000},  # paid before the alert
        claim_line_doc_id("C3", "L1"): {"outcome": "DENIED", "decided_date": "2025-12-20"},
        claim_line_doc_id("C5", "L1"): {**paid_after, "paid_cents": 7000}}  # a noise alert's
    auths: list[dict[str, Any]] = [{"status": "RENEWED", "end_date": "2026-01-31",
              "status_set_at": datetime(2026, 1, 10, tzinfo=UTC)},
             {"status": "RENEWED", "end_date": "2026-01-05", "status_set_at": "2026-01-10"},
             {"status": "ACTIVE", "end_date": "2026-03-01"}]
    found = gains([raised, noise], now, auths)
    assert found.recovered_cents == 9000 and found.recovered_lines == 1
    assert found.renewed_in_time == 1
    assert found.flagged_alerts <= 1  # the noise alert is never counted
    assert set(line_doc_ids([raised, noise])) == {claim_line_doc_id(c, "L1")
                                                  for c in ("C1", "C2", "C3")}


def test_the_home_page_leads_with_the_gains() -> None:
    deps, stores, _, _ = people_dashboard()
    stores.alerts["acme"]["a9"] = alert(alert_id="a9", first_seen="2025-12-01",
                                        evidence={"affected_lines": [_line("C9")]})
    stores.lines["acme"][claim_line_doc_id("C9", "L1")] = {
        "outcome": "PAID", "decided_date": "2025-12-15", "paid_cents": 12345}
    cookie = person_cookie(deps, "viewer@acme.test", "viewer-password")
    page = request(deps, "GET", "/", cookie)
    assert page.status == 200
    assert page.html.index('id="gains"') < page.html.index('id="alerts"')
    assert 'id="gain-recovered">$123.45<' in page.html
