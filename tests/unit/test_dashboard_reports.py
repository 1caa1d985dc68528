"""An alert's evidence as CSV and as a one-page PDF (WeasyPrint, for real): patient keys only,
formulas neutralised, hostile text escaped, nothing fetched while rendering, another
practice's alert refused."""

from __future__ import annotations

import csv
import io

import pytest

from tests.unit.test_dashboard import request
from tests.unit.test_notify import alert
from tests.unit.test_people import people_dashboard, person_cookie
from upstream.adapters.pdf import INLINE_ONLY, html_to_pdf
from upstream.services.dashboard import DashboardDeps

HOSTILE = "<script>alert('x')</script>"
LINES = [{"claim_id": "=cmd|' /C calc'!A0", "line": 1, "patient_key": "a" * 64, "cpt": "97153",
          "modifiers": ["HN"], "carc_codes": ["CO-197"], "billed_cents": 12050,
          "service_date": "2025-12-01", "decided_date": "2025-12-20", "outcome": "DENIED"}]


def _deps() -> tuple[DashboardDeps, list[str], str]:
    base, stores, _, _ = people_dashboard()
    rendered: list[str] = []

    def pdf(html: str) -> bytes:
        rendered.append(html)
        return html_to_pdf(html)

    stores.alerts["acme"]["hostile"] = alert(
        alert_id="hostile", payer=HOSTILE, title=HOSTILE,
        evidence={"affected_lines": LINES, "top_carc": [{"code": "CO-197", "meaning": HOSTILE}]})
    deps = DashboardDeps(stores=stores, session_key=base.session_key, clock=base.clock,
                         identity=base.identity, sign_in=base.sign_in, pdf=pdf)
    return deps, rendered, person_cookie(deps, "viewer@acme.test", "viewer-password")


def test_the_evidence_csv_holds_patient_keys_and_no_live_formula() -> None:
    deps, _, cookie = _deps()
    page = request(deps, "GET", "/alerts/hostile/evidence.csv", cookie)
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(page.html)))
    assert row["claim_id"].startswith("'=") and row["patient_key"] == "a" * 64
    assert row["billed_dollars"] == "120.50" and row["modifiers"] == "HN"
    assert request(deps, "GET", "/alerts/nope/evidence.csv", cookie).status == 404


def test_the_pdf_is_one_rendered_page_with_the_text_escaped() -> None:
    deps, rendered, cookie = _deps()
    page = request(deps, "GET", "/alerts/hostile/report.pdf", cookie)
    assert page.status == 200 and page.headers["Content-Type"] == "application/pdf"
    assert page.body is not None and page.body.startswith(b"%PDF-")
    assert page.body.count(b"/Type /Page\n") + page.body.count(b"/Type /Page ") <= 2
    (html,) = rendered
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "=cmd" in html  # in a PDF a formula is only text
    assert request(deps, "GET", "/alerts/nope/report.pdf", cookie).status == 404


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://169.254.169.254/", "https://x"])
def test_rendering_fetches_nothing_but_inline_data(url: str) -> None:
    with pytest.raises(ValueError):
        INLINE_ONLY.fetch(url)
    pdf = html_to_pdf(f'<p>x</p><img src="{url}"><link rel="stylesheet" href="{url}">')
    assert pdf.startswith(b"%PDF-")
