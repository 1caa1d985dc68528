"""The payer pages: the list of archetypes, one payer's evidence and charts, another
practice's payers never shown, hostile payer names escaped, every visit audited."""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.unit.test_api import acme_payers
from tests.unit.test_dashboard import HOSTILE, request
from tests.unit.test_people import people_dashboard, person_cookie
from upstream.services.dashboard import DashboardDeps


def signed_in() -> tuple[DashboardDeps, Any, str]:
    deps, stores, _, _ = people_dashboard()
    return deps, stores, person_cookie(deps, "viewer@acme.test", "viewer-password")


def test_the_list_names_each_payer_and_links_its_page() -> None:
    deps, stores, cookie = signed_in()
    page = request(deps, "GET", "/payers", cookie)
    assert page.status == 200, page.html
    rows = dict(re.findall(r'data-payer="([^"]+)" data-archetype="([^"]+)"', page.html))
    assert rows["Slow Plan / East"] == "Slow Payer" and rows["Aetna"] == "Typical"
    slow = next(p for p in acme_payers() if p["payer"] == "Slow Plan / East")
    assert f'href="/payers/{slow["payer_id"]}"' in page.html
    assert 'id="nav-payers"' in page.html
    assert stores.audit["acme"][-1]["action"] == "GET /payers"


def test_a_payer_page_shows_evidence_reasons_and_both_charts() -> None:
    deps, stores, cookie = signed_in()
    slow = next(p for p in acme_payers() if p["payer"] == "Slow Plan / East")
    page = request(deps, "GET", f"/payers/{slow['payer_id']}", cookie)
    assert page.status == 200, page.html
    assert 'id="archetype">Slow Payer</span>' in page.html
    assert "Pays in" in page.html and 'id="fingerprint"' in page.html
    assert 'id="top-reasons"' in page.html and "authorization" in page.html.lower()
    assert stores.audit["acme"][-1]["action"] == "GET /payers/<payer_id>"
    by_name = request(deps, "GET", "/payers/aetna", cookie)  # a name works too, any case
    assert by_name.status == 200 and 'id="payer-name">Aetna' in by_name.html
    assert "data:image/png;base64," in by_name.html  # the denial chart of the test cells


def test_unknown_payers_and_another_practices_payers_are_not_found() -> None:
    deps, stores, cookie = signed_in()
    assert request(deps, "GET", "/payers/0123456789abcdef", cookie).status == 404
    assert request(deps, "GET", "/payers/" + "x" * 5000, cookie).status == 404
    stores.payer_report = lambda customer: None  # type: ignore[method-assign]
    empty = request(deps, "GET", "/payers", cookie)
    assert empty.status == 200 and 'id="no-payer-report"' in empty.html


def test_the_network_view_shows_where_five_practices_contribute() -> None:
    deps, stores, cookie = signed_in()
    payers = copy.deepcopy(acme_payers())
    payers[0]["network"] = {"archetype": "Aggressive Denier", "practices": 7,
                            "because": ["Denies 30.0% of lines this quarter vs 9.0% before."]}
    stores.payer_report = lambda customer: {"as_of": "2026-01-05",  # type: ignore[method-assign]
                                            "payers": payers}
    page = request(deps, "GET", f"/payers/{payers[0]['payer_id']}", cookie)
    assert page.status == 200 and 'id="network-view">7 practices' in page.html
    other = request(deps, "GET", f"/payers/{payers[1]['payer_id']}", cookie)
    assert 'id="network-view"' not in other.html


def test_a_hostile_payer_name_is_escaped() -> None:
    deps, stores, cookie = signed_in()
    hostile = copy.deepcopy(acme_payers())
    hostile[0]["payer"] = HOSTILE
    hostile[0]["evidence"]["because"] = [HOSTILE]
    stores.payer_report = lambda customer: {"as_of": "2026-01-05",  # type: ignore[method-assign]
                                            "payers": hostile}
    for path in ("/payers", f"/payers/{hostile[0]['payer_id']}"):
        page = request(deps, "GET", path, cookie)
        assert page.status == 200 and HOSTILE not in page.html
        assert "&lt;script&gt;" in page.html


def test_the_payer_pages_need_a_session() -> None:
    deps, _, _ = signed_in()
    page = request(deps, "GET", "/payers")
    assert page.status in (302, 303) and "/login" in page.headers["Location"]
