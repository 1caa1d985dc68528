"""The JSON API with in-memory stores: routes, keys and scopes, errors, paging. The same
routes on the stack, over HTTP, with another tenant's key: tests/integration."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openapi_spec_validator import validate

from tests.unit.test_notify import alert
from upstream.domain.aggregates import DailyCell
from upstream.domain.api_keys import allows, new_key, parse_bearer
from upstream.services.api import ROUTES, ApiDeps, handle, openapi

NOW = datetime(2026, 1, 7, 12, tzinfo=UTC)


@cache
def acme_payers() -> list[dict[str, Any]]:
    """A real report (the domain's own), of a practice with one slow payer."""
    from tests.claim_streams import START, Behaviour, documents
    from upstream.domain.aggregates import build_frame, cells_from_documents
    from upstream.domain.payer_behavior.report import payer_report

    docs = [d for b in (Behaviour("Aetna"), Behaviour("Cigna"), Behaviour("Humana"),
                        Behaviour("Slow Plan / East", lag_days=40)) for d in documents(b, 200)]
    as_of = START + timedelta(days=200)
    return payer_report(build_frame(cells_from_documents(docs), end=as_of), as_of)


class Stores:
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.alerts: dict[str, dict[str, dict[str, Any]]] = {"acme": {}, "beta": {}}
        self.auths = {"acme": [{"authorization_number": "A1", "payer": "Aetna",
                                "end_date": "2026-01-20", "status": "EXPIRING_SOON"},
                               {"authorization_number": "A2", "payer": "Aetna",
                                "end_date": "2026-06-01", "status": "ACTIVE"}], "beta": []}
        self.tenants = {"acme": {"name": "Acme"}, "beta": {"name": "Beta"}}
        self.audit: dict[str, list[dict[str, Any]]] = {"acme": [], "beta": []}
        self.audit_fails = False

    def key(self, key_id: str) -> dict[str, Any] | None:
        return self.keys.get(key_id)

    def append_audit(self, customer: str, entry: dict[str, Any]) -> None:
        if self.audit_fails:
            from google.api_core import exceptions as gexc

            raise gexc.ServiceUnavailable("firestore down")  # type: ignore[no-untyped-call]
        from upstream.domain.audit import entry_id

        count = sum(len(v) for v in self.audit.values())
        self.audit.setdefault(customer, []).append(
            {**entry, "_id": entry_id(entry["at"], f"{count:012x}")})

    def audit_page(self, customer: str, since: datetime | None, actor: str | None,
                   size: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        rows = [e for e in reversed(self.audit.get(customer, []))
                if (not since or e["at"] >= since) and (not actor or e["actor"] == actor)]
        start = next((i + 1 for i, e in enumerate(rows) if e["_id"] == after), 0) \
            if after else 0
        page = rows[start:start + size]
        return page, page[-1]["_id"] if start + size < len(rows) and page else None

    def alert_page(self, customer: str, filters: dict[str, str], size: int,
                   after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        rows = sorted((a for a in self.alerts[customer].values()
                       if all(a.get(k) == v for k, v in filters.items())),
                      key=lambda a: a["alert_id"])
        rows = [a for a in rows if after is None or a["alert_id"] > after]
        return rows[:size], rows[size - 1]["alert_id"] if len(rows) > size else None

    def alert(self, customer: str, alert_id: str) -> dict[str, Any] | None:
        return self.alerts[customer].get(alert_id)

    def set_alert_status(self, customer: str, alert_id: str, status: str,
                         entry: dict[str, Any]) -> dict[str, Any] | None:
        found = self.alerts[customer].get(alert_id)
        if found:
            found.update(status=status, history=[*found.get("history", []), entry])
        return found

    def alert_feedback(self, customer: str, alert_id: str, useful: bool,
                       entry: dict[str, Any]) -> dict[str, Any] | None:
        found = self.alerts[customer].get(alert_id)
        if found:
            found.setdefault("feedback", []).append({**entry, "useful": useful})
        return found

    def authorizations(self, customer: str) -> list[dict[str, Any]]:
        return [dict(a) for a in self.auths[customer]]

    def set_authorization_status(self, customer: str, number: str, status: str) -> bool:
        for auth in self.auths[customer]:
            if auth["authorization_number"] == number:
                auth["status"] = status
                return True
        return False

    def uploads(self, customer: str, limit: int) -> list[dict[str, Any]]:
        return [{"upload_id": "u1", "status": "complete"}][:limit] if customer == "acme" else []

    def upload(self, customer: str, upload_id: str) -> dict[str, Any] | None:
        return {"upload_id": "u1"} if (customer, upload_id) == ("acme", "u1") else None

    def tenant(self, customer: str) -> dict[str, Any] | None:
        return self.tenants.get(customer)

    def update_tenant(self, customer: str, fields: dict[str, Any]) -> None:
        self.tenants[customer].update(fields)

    def payer_report(self, customer: str) -> dict[str, Any] | None:
        return {"as_of": "2026-01-05", "payers": acme_payers()} if customer == "acme" else None

    def cells(self, customer: str, first: date, end: date) -> list[DailyCell]:
        return [DailyCell("Aetna", date(2025, 12, 29) + timedelta(days=i),
                          {"decided": 10, "denied": 2, "denied_cents": 20000, "paid_cents": 1})
                for i in range(7)] if customer == "acme" else []


def setup() -> tuple[ApiDeps, Stores, dict[str, str]]:
    stores = Stores()
    tokens = {}
    for name, customer, scopes, extra in (
            ("read", "acme", ["read"], {}), ("write", "acme", ["read", "write"], {}),
            ("beta", "beta", ["read", "write"], {}),
            ("revoked", "acme", ["read"], {"revoked_at": NOW}),
            ("expired", "acme", ["read"], {"expires_at": NOW - timedelta(days=1)})):
        key = new_key()
        stores.keys[key.key_id] = {"customer_id": customer, "secret_hash": key.secret_hash,
                                   "scopes": scopes, "expires_at": None, "revoked_at": None,
                                   **extra}
        tokens[name] = key.token
    for i in range(5):
        a = alert(alert_id=f"a{i}", customer_id="acme",
                  status="open" if i % 2 else "noise", payer="Aetna" if i < 3 else "Cigna")
        stores.alerts["acme"][a["alert_id"]] = a
    return ApiDeps(stores=stores, clock=lambda: NOW), stores, tokens


def call(deps: ApiDeps, method: str, path: str, token: str | None = None,
         query: dict[str, str] | None = None, body: Any = None) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None \
        else b""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = handle(method, path, query or {}, headers, raw, deps)
    if answer.status >= 400:
        assert answer.content_type == "application/problem+json"
        assert answer.body["status"] == answer.status
    return answer.status, answer.body


def test_alerts_filter_page_and_act() -> None:
    deps, _, tokens = setup()
    status, first = call(deps, "GET", "/v1/alerts", tokens["read"], {"page_size": "2"})
    assert status == 200 and [a["alert_id"] for a in first["alerts"]] == ["a0", "a1"]
    _, second = call(deps, "GET", "/v1/alerts", tokens["read"],
                     {"page_size": "2", "page_token": first["next_page_token"]})
    assert [a["alert_id"] for a in second["alerts"]] == ["a2", "a3"]
    _, noisy = call(deps, "GET", "/v1/alerts", tokens["read"], {"status": "noise",
                                                                "payer": "Aetna"})
    assert [a["alert_id"] for a in noisy["alerts"]] == ["a0", "a2"]
    status, acked = call(deps, "POST", "/v1/alerts/a1/acknowledge", tokens["write"],
                         body={"note": "calling Aetna"})
    assert status == 200 and acked["status"] == "acknowledged"
    assert acked["history"][-1]["note"] == "calling Aetna"
    assert call(deps, "POST", "/v1/alerts/a1/useful", tokens["write"])[1]["feedback"]
    assert call(deps, "GET", "/v1/alerts/a1", tokens["read"])[1]["status"] == "acknowledged"


def test_keys_scopes_and_one_answer_for_every_bad_key() -> None:
    deps, _, tokens = setup()
    bad = [None, "nope", tokens["revoked"], tokens["expired"], tokens["read"][:-1] + "x",
           "upk_0000000000000000_" + "a" * 43]
    bodies = {json.dumps(call(deps, "GET", "/v1/alerts", t)[1]) for t in bad}
    assert len(bodies) == 1 and call(deps, "GET", "/v1/alerts", None)[0] == 401
    assert call(deps, "POST", "/v1/alerts/a1/resolve", tokens["read"])[0] == 403
    assert call(deps, "PUT", "/v1/settings", tokens["read"], body={})[0] == 403


def test_another_tenants_ids_are_not_found() -> None:
    deps, _, tokens = setup()
    beta = tokens["beta"]
    assert call(deps, "GET", "/v1/alerts/a1", beta)[0] == 404
    assert call(deps, "POST", "/v1/alerts/a1/noise", beta)[0] == 404
    assert call(deps, "POST", "/v1/authorizations/A1/renewed", beta)[0] == 404
    assert call(deps, "GET", "/v1/uploads/u1", beta)[0] == 404
    assert call(deps, "GET", "/v1/alerts", beta)[1]["alerts"] == []
    assert call(deps, "GET", "/v1/claims/summary", beta)[1]["weeks"] == []


@pytest.mark.parametrize("method, path, query, body, status", [
    ("GET", "/v1/alerts", {"page_size": "201"}, None, 400),
    ("GET", "/v1/alerts", {"page_size": "0"}, None, 400),
    ("GET", "/v1/alerts", {"page_size": "ten"}, None, 400),
    ("GET", "/v1/alerts", {"sort": "payer"}, None, 400),  # unknown parameter
    ("GET", "/v1/alerts", {"status": "{\"$ne\": null}"}, None, 400),
    ("GET", "/v1/alerts", {"type": "drift'; DROP TABLE alerts;--"}, None, 400),
    ("GET", "/v1/alerts", {"page_token": "%%%"}, None, 400),
    ("GET", "/v1/claims/summary", {"as_of": "yesterday"}, None, 400),
    ("POST", "/v1/alerts/a1/acknowledge", {}, b"{not json", 400),
    ("POST", "/v1/alerts/a1/acknowledge", {}, {"note": "x", "status": "resolved"}, 400),
    ("POST", "/v1/alerts/a1/acknowledge", {}, [1, 2], 400),
    ("POST", "/v1/alerts/a1/explode", {}, None, 404),
    ("PUT", "/v1/settings", {}, {"notifications": {"channels": [{"id": "x", "kind": "fax"}]}},
     400),
    ("PUT", "/v1/settings", {}, {}, 400),
    ("DELETE", "/v1/alerts/a1", {}, None, 405),
    ("GET", "/v2/alerts", {}, None, 404),
    ("POST", "/v1/alerts/a1/acknowledge", {}, b"x" * (70 * 1024), 413),
])
def test_bad_requests_get_a_problem_with_a_reason(method: str, path: str,
                                                  query: dict[str, str], body: Any,
                                                  status: int) -> None:
    deps, _, tokens = setup()
    got, answer = call(deps, method, path, tokens["write"], query, body)
    assert got == status, answer
    assert answer["title"] and answer["type"].startswith("https://upstream.dev/problems/")


def test_a_payer_filter_that_looks_like_an_operator_is_only_a_string() -> None:
    deps, _, tokens = setup()
    status, body = call(deps, "GET", "/v1/alerts", tokens["read"], {"payer": "{'$ne': ''}"})
    assert status == 200 and body["alerts"] == []


def test_authorizations_uploads_summary_and_settings() -> None:
    deps, stores, tokens = setup()
    _, soon = call(deps, "GET", "/v1/authorizations", tokens["read"],
                   {"expiring_within_days": "30"})
    assert [a["authorization_number"] for a in soon["authorizations"]] == ["A1"]
    assert call(deps, "POST", "/v1/authorizations/A1/renewed", tokens["write"])[0] == 200
    assert stores.auths["acme"][0]["status"] == "RENEWED"
    assert call(deps, "GET", "/v1/uploads", tokens["read"])[1]["uploads"][0]["upload_id"] == "u1"
    _, summary = call(deps, "GET", "/v1/claims/summary", tokens["read"], {"weeks": "2"})
    (week,) = summary["weeks"]
    _, before = call(deps, "GET", "/v1/claims/summary", tokens["read"],
                     {"weeks": "2", "as_of": "2025-12-20"})
    assert before["to"] == "2025-12-15"
    assert (week["payer"], week["decided"], week["denial_rate"], week["denied_dollars"]) == (
        "Aetna", 70, 0.2, 1400.0)
    rules = {"channels": [{"id": "ops", "kind": "email", "recipients": ["ops@example.com"]}]}
    aliases = {"UHC": "UnitedHealthcare"}
    status, saved = call(deps, "PUT", "/v1/settings", tokens["write"],
                         body={"notifications": rules, "payer_aliases": aliases})
    assert status == 200 and saved["notifications"]["channels"][0]["id"] == "ops"
    assert call(deps, "GET", "/v1/settings", tokens["read"])[1]["payer_aliases"] == {
        "UHC": "UnitedHealthcare"}


def test_the_openapi_document_is_valid_and_lists_every_route() -> None:
    deps, _, _ = setup()
    status, document = call(deps, "GET", "/v1/openapi.json")
    assert status == 200
    validate(document)
    assert document == openapi()
    listed = {(p, m.upper()) for p, ops in document["paths"].items() for m in ops}
    assert listed == {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path), method)
                      for path, method in ((r.path, r.method) for r in ROUTES)}


@given(st.one_of(st.none(), st.text(max_size=80)))
def test_no_authorization_header_ever_passes(header: str | None) -> None:
    parsed = parse_bearer(header)
    assert parsed is None or allows(None, parsed[1], "read", NOW) == "unauthenticated"


def test_the_bearer_scheme_is_case_insensitive() -> None:
    deps, _, tokens = setup()
    for scheme in ("bearer", "BEARER", "Bearer"):
        answer = handle("GET", "/v1/alerts", {}, {"Authorization": f"{scheme} {tokens['read']}"},
                        b"", deps)
        assert answer.status == 200, scheme
    assert handle("GET", "/v1/alerts", {}, {"Authorization": f"Basic {tokens['read']}"}, b"",
                  deps).status == 401


@pytest.mark.parametrize("bad_id", ["__x__", ".", "..", "__.__", "a\nb", "\x00", "x" * 1501])
def test_ids_firestore_refuses_are_not_found_before_any_lookup(bad_id: str) -> None:
    deps, stores, tokens = setup()

    def refuse(*_: Any) -> None:
        raise AssertionError("an unusable id reached the store")

    stores.alert = refuse  # type: ignore[method-assign,assignment]
    stores.upload = refuse  # type: ignore[method-assign,assignment]
    for path in (f"/v1/alerts/{bad_id}", f"/v1/uploads/{bad_id}"):
        status, body = call(deps, "GET", path, tokens["read"])
        assert status == 404, (path, body)


def test_hostile_json_bodies_are_a_400() -> None:
    deps, _, tokens = setup()
    for raw in (b"[" * 30_000, b'{"note": ' + b"1" * 10_000 + b"}", b'{"note": "\\ud800"}',
                b'{"note": NaN}', b"\xff\xfe"):
        status, body = call(deps, "POST", "/v1/alerts/a1/acknowledge", tokens["write"],
                            body=raw)
        assert status == 400, body


def test_bodies_the_document_marks_optional_may_be_absent_and_required_ones_are_marked() -> None:
    deps, _, tokens = setup()
    assert call(deps, "POST", "/v1/alerts/a1/acknowledge", tokens["write"])[0] == 200
    assert call(deps, "POST", "/v1/authorizations/A1/renewed", tokens["write"])[0] == 200
    document = openapi()
    for route in ROUTES:
        operation = document["paths"][re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.path)][
            route.method.lower()]
        if route.method in ("GET",):
            assert "requestBody" not in operation
            continue
        if not operation["requestBody"]["required"]:  # then no body at all is accepted
            assert route.body is not None
            route.body.model_validate({})


@pytest.mark.parametrize("settings", [{"payer_aliases": {"": "Aetna"}},
                                      {"visit_limits": {"": 20}},
                                      {"payer_aliases": {"Aetna PPO": ""}},
                                      {"payer_aliases": {"a\x00b": "Aetna"}}])
def test_settings_keys_firestore_cannot_store_are_a_400(settings: dict[str, Any]) -> None:
    """Found by schemathesis on the stack: an empty map key was a Firestore ValueError (500)."""
    deps, _, tokens = setup()
    status, body = call(deps, "PUT", "/v1/settings", tokens["write"], body=settings)
    assert status == 400, body


def test_a_trailing_slash_is_the_route_without_it_never_a_redirect_exception() -> None:
    """Found by `make fuzz`: werkzeug raised RequestRedirect (an uncaught 308) for
    `/v1/alerts/`, an empty alert id."""
    deps, _, tokens = setup()
    assert call(deps, "GET", "/v1/alerts/", tokens["read"])[0] == 200
    assert call(deps, "GET", "/v1/uploads//", tokens["read"])[0] in (200, 404)



def _example_path(path: str) -> str:
    return (path.replace("<alert_id>", "a1").replace("<action>", "acknowledge")
            .replace("<number>", "A1").replace("<upload_id>", "u1")
            .replace("<action_id>", "x1").replace("<topic>", "claims"))


def test_every_route_writes_exactly_one_audit_entry_without_phi() -> None:
    """Contract 6 through one mechanism: walking the route table, each call by a key (allowed
    or not) leaves one entry with who, what, which outcome; an unknown key leaves none (no
    tenant to file it under) and the authorization number never appears."""
    from upstream.services.api import ROUTES

    deps, stores, tokens = setup()
    for route in ROUTES:
        for token in ("read", "write"):
            before = len(stores.audit["acme"])
            status, _ = call(deps, route.method, _example_path(route.path), tokens[token],
                             body={} if route.method in ("POST", "PUT") else None)
            entries = stores.audit["acme"][before:]
            assert len(entries) == 1, (route.path, token)
            (entry,) = entries
            assert entry["action"] == f"{route.method} {route.path}"
            assert entry["outcome"] == status and entry["actor"].startswith("key:")
            assert entry["role"] == token and entry["at"] == NOW
            assert "A1" not in entry["resource"]  # a payer's authorization number
            if status >= 400:  # an id the caller typed is not recorded
                assert entry["resource"] == route.path
            if route.scope == "write" and token == "read":
                assert status == 403
    assert stores.audit["beta"] == []
    call(deps, "GET", "/v1/alerts/a1", tokens["beta"])  # acme's id, asked for by beta
    assert stores.audit["beta"][-1]["resource"] == "/v1/alerts/<alert_id>"
    call(deps, "GET", "/v1/alerts/a1", tokens["read"])
    assert stores.audit["acme"][-1]["resource"] == "/v1/alerts/a1"
    before = sum(len(v) for v in stores.audit.values())
    assert call(deps, "GET", "/v1/alerts", "upk_nope_nope")[0] == 401
    assert sum(len(v) for v in stores.audit.values()) == before


def test_no_access_is_given_unrecorded() -> None:
    deps, stores, tokens = setup()
    stores.audit_fails = True
    status, body = call(deps, "GET", "/v1/alerts", tokens["read"])
    assert status == 503 and body["status"] == 503


def test_owners_read_the_audit_with_filters_and_pages_of_their_practice_only() -> None:
    deps, _stores, tokens = setup()
    for _ in range(3):
        call(deps, "GET", "/v1/alerts", tokens["read"])
    call(deps, "GET", "/v1/alerts", tokens["beta"])
    status, _ = call(deps, "GET", "/v1/audit", tokens["read"])
    assert status == 403
    status, page = call(deps, "GET", "/v1/audit", tokens["write"], {"page_size": "2"})
    assert status == 200 and len(page["entries"]) == 2 and page["next_page_token"]
    status, rest = call(deps, "GET", "/v1/audit", tokens["write"],
                        {"page_token": page["next_page_token"], "page_size": "50"})
    assert status == 200 and not rest["next_page_token"]
    everything = page["entries"] + rest["entries"]
    assert all(e["actor"] != f"key:{tokens['beta'].split('_')[1]}" for e in everything)
    assert {e["action"] for e in everything} >= {"GET /v1/alerts", "GET /v1/audit"}
    reader = next(e["actor"] for e in everything if e["role"] == "read")
    status, only = call(deps, "GET", "/v1/audit", tokens["write"], {"actor": reader})
    assert status == 200 and {e["actor"] for e in only["entries"]} == {reader}
    import base64

    hostile = [base64.urlsafe_b64encode(t).decode() for t in (b"a/b", b"__x__", b".", b"2")]
    for bad in ({"page_token": "!!"}, {"since": "yesterday"}, {"page_size": "0"},
                {"surprise": "1"}, *({"page_token": t} for t in hostile)):
        assert call(deps, "GET", "/v1/audit", tokens["write"], bad)[0] == 400


# --- payers ------------------------------------------------------------------------------------

def test_payers_list_filter_and_one_payer_validate_against_their_schemas() -> None:
    from upstream.services.api_schemas import PayerList, PayerOut

    deps, _, tokens = setup()
    status, listed = call(deps, "GET", "/v1/payers", tokens["read"])
    assert status == 200 and listed["as_of"] == "2026-01-05"
    PayerList.model_validate(listed)
    assert {p["payer"] for p in listed["payers"]} == {"Aetna", "Cigna", "Humana",
                                                      "Slow Plan / East"}
    _, slow = call(deps, "GET", "/v1/payers", tokens["read"], {"archetype": "Slow Payer"})
    assert [p["payer"] for p in slow["payers"]] == ["Slow Plan / East"]
    status, one = call(deps, "GET", "/v1/payers/cigna", tokens["read"])  # any case
    assert status == 200 and one["payer"] == "Cigna"
    PayerOut.model_validate(one)
    assert call(deps, "GET", "/v1/payers/Slow%20Plan", tokens["read"])[0] == 404


@pytest.mark.parametrize("query", [{"archetype": "Nice Payer"}, {"payer": "Aetna"},
                                   {"archetype": ""}])
def test_payers_refuse_unknown_filters(query: dict[str, str]) -> None:
    deps, _, tokens = setup()
    assert call(deps, "GET", "/v1/payers", tokens["read"], query)[0] == 400


def test_a_practice_without_a_report_yet_gets_an_empty_list_and_no_other_tenants() -> None:
    deps, _, tokens = setup()
    assert call(deps, "GET", "/v1/payers", tokens["beta"])[1] == {"as_of": None, "payers": []}
    assert call(deps, "GET", "/v1/payers/Aetna", tokens["beta"])[0] == 404
    assert call(deps, "GET", "/v1/payers", None)[0] == 401
    long_name = "x" * 201
    assert call(deps, "GET", f"/v1/payers/{long_name}", tokens["read"])[0] == 400
