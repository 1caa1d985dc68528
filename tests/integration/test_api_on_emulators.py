"""The `api` function on the stack, over HTTP, against Firestore: every route tried with
another tenant's key gets nothing of the first tenant's (404 for its ids, empty lists)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from google.cloud import firestore  # type: ignore[attr-defined]

from tests.conftest import emulator_db
from tests.unit.test_api import acme_payers
from tests.unit.test_notify import alert
from upstream.adapters.firestore_api_keys import FirestoreApiKeys
from upstream.adapters.firestore_automation import FirestoreAutomation
from upstream.adapters.firestore_payer_reports import FirestorePayerReports
from upstream.adapters.firestore_store import FirestoreTenants, tenant_collection
from upstream.domain.api_keys import new_key
from upstream.domain.automation.tiers import ProposedAction
from upstream.domain.records import authorization_doc_id
from upstream.services.api import ROUTES
from upstream.stack import manager
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators


def _seed(db: firestore.Client, customer: str, unique: str) -> dict[str, str]:
    FirestoreTenants(db).upsert(customer, {"name": customer})
    alert_id = f"al-{customer}-{unique}"
    tenant_collection(db, customer, "alerts").document(alert_id).set(
        alert(alert_id=alert_id, customer_id=customer))
    number = f"AUTH-{customer}-{unique}"
    tenant_collection(db, customer, "authorizations").document(
        authorization_doc_id(number)).set({"authorization_number": number, "payer": "Aetna",
                                           "end_date": "2026-02-01", "status": "ACTIVE"})
    upload_id = f"up-{customer}-{unique}"
    tenant_collection(db, customer, "uploads").document(upload_id).set(
        {"upload_id": upload_id, "status": "complete", "started_at": datetime.now(UTC)})
    automation = FirestoreAutomation(db)
    action_ids = {}
    for kind, status in (("add_modifier", "queued_for_review"), ("hold_claim", "executed")):
        proposed = ProposedAction(customer_id=customer, action_type=kind,  # type: ignore[arg-type]
                                  target=f"claim:C-{unique}", confidence=97, dollars_cents=100,
                                  details={"modifier": "GP", "current": {"modifiers": []}})
        automation.begin(customer, proposed.action_id, {
            **proposed.model_dump(mode="json"), "action_id": proposed.action_id,
            "status": status, "tier": 2})
        action_ids[kind] = proposed.action_id
    payer = f"Plan / {customer}"  # a name with a '/', as payer names can have
    entry = {**acme_payers()[0], "payer": payer}
    FirestorePayerReports(db).save_payer_report(customer, date(2026, 1, 5), [entry])
    key = new_key()
    FirestoreApiKeys(db).create(key.key_id, customer, key.secret_hash, ["read", "write"], "t",
                                datetime.now(UTC), datetime.now(UTC) + timedelta(days=1))
    return {"customer": customer, "alert_id": alert_id, "number": number, "payer": payer,
            "upload_id": upload_id, "queued": action_ids["add_modifier"],
            "hold": action_ids["hold_claim"],
            "action": "acknowledge", "token": key.token, "key_id": key.key_id}


BODIES: dict[str, Any] = {
    "/v1/settings": {"notifications": {"channels": []}},
    "/v1/risk/score": {"payer": "Aetna", "lines": [{"cpt": "97110"}]},
    "release-hold": {"justification": "The payer confirmed the authorization by phone"}}


def _request(base: str, method: str, path: str, token: str) -> requests.Response:
    body = BODIES.get(path) or BODIES.get(path.rsplit("/", 1)[-1]) if method != "GET" else None
    return requests.request(method, base + path, json=body, timeout=10,
                            headers={"Authorization": f"Bearer {token}"})


def test_every_route_refuses_another_tenants_data(clean_stack: StackConfig, unique: str) -> None:
    db = emulator_db(clean_stack)
    acme, beta = _seed(db, f"acme-{unique}", unique), _seed(db, f"beta-{unique}", unique)
    base = manager.function_urls(clean_stack)["api"]
    for route in ROUTES:
        path, method = route.path, route.method
        concrete = (path.replace("<alert_id>", acme["alert_id"])
                    .replace("<action>", acme["action"])
                    .replace("<number>", acme["number"])
                    .replace("<upload_id>", acme["upload_id"])
                    .replace("<path:payer>", acme["payer"])
                    .replace("<topic>", "claims")  # a topic, not a tenant's id: scoped below
                    .replace("<action_id>", acme["hold"] if path.endswith("release-hold")
                             else acme["queued"]))
        theirs = _request(base, method, concrete, beta["token"])
        if "<" in path.replace("<topic>", ""):
            assert theirs.status_code == 404, (path, theirs.text)
            assert theirs.headers["Content-Type"] == "application/problem+json"
        else:
            assert theirs.status_code == 200, (path, theirs.text)
            assert acme["alert_id"] not in theirs.text and acme["number"] not in theirs.text
            assert acme["upload_id"] not in theirs.text and acme["queued"] not in theirs.text
        mine = _request(base, method, concrete, acme["token"])
        assert mine.status_code == 200, (path, mine.text)
    # After "renewed" (which records when), the list still answers JSON (schemathesis found a
    # Firestore timestamp there once).
    renewed = _request(base, "GET", "/v1/authorizations", acme["token"])
    assert renewed.status_code == 200 and "RENEWED" in renewed.text
    assert _request(base, "GET", "/v1/alerts", "upk_bad").status_code == 401
    FirestoreApiKeys(db).revoke(beta["key_id"], datetime.now(UTC))
    assert _request(base, "GET", "/v1/alerts", beta["token"]).status_code == 401
    document = requests.get(base + "/v1/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")


def _signed_in(base: str, token: str) -> tuple[requests.Session, str]:
    """A browser-like session on the dashboard: the cookie, and the CSRF token of its forms."""
    import re

    browser = requests.Session()
    form = browser.get(base + "/login", timeout=10)  # sets the sign-in form's own cookie
    form_token = re.search(r'name="form_token" value="([^"]+)"', form.text)
    assert form_token
    answer = browser.post(base + "/login", data={"key": token, "next": "/",
                                                 "form_token": form_token.group(1)}, timeout=10)
    assert answer.status_code == 200 and answer.url.rstrip("/") == base.rstrip("/"), answer.text
    found = re.search(r'name="csrf" value="([^"]+)"', answer.text)
    assert found
    return browser, found.group(1)


def test_every_dashboard_page_refuses_another_tenants_data(clean_stack: StackConfig,
                                                          unique: str) -> None:
    from upstream.services.dashboard import PAGES

    db = emulator_db(clean_stack)
    acme, beta = _seed(db, f"acme-{unique}", unique), _seed(db, f"beta-{unique}", unique)
    base = manager.function_urls(clean_stack)["api"].rstrip("/")
    theirs, csrf = _signed_in(base, beta["token"])
    overview = theirs.get(base + "/", timeout=10)
    assert overview.status_code == 200 and beta["alert_id"] in overview.text
    assert acme["alert_id"] not in overview.text and acme["number"] not in overview.text
    for path, method, _, _ in PAGES:
        if "<" not in path:
            continue
        concrete = (path.replace("<alert_id>", acme["alert_id"])
                    .replace("<action>", acme["action"]).replace("<number>", acme["number"]))
        answer = theirs.request(method, base + concrete, data={"csrf": csrf}, timeout=10,
                                allow_redirects=False)
        assert answer.status_code == 404, (path, answer.status_code)
    stored = tenant_collection(db, acme["customer"], "alerts").document(acme["alert_id"]).get()
    assert (stored.to_dict() or {})["status"] == "open"
    mine, my_csrf = _signed_in(base, acme["token"])
    done = mine.post(f"{base}/alerts/{acme['alert_id']}/acknowledge",
                     data={"csrf": my_csrf, "next": "/"}, timeout=10, allow_redirects=False)
    assert done.status_code == 303
    FirestoreApiKeys(db).revoke(beta["key_id"], datetime.now(UTC))
    assert theirs.get(base + "/", timeout=10, allow_redirects=False).status_code == 303


def test_the_audit_is_appended_paged_newest_first_and_kept_per_tenant(
        clean_stack: StackConfig, unique: str) -> None:
    from datetime import UTC, datetime, timedelta

    from upstream.adapters.firestore_audit import FirestoreAudit
    from upstream.domain import audit

    log = FirestoreAudit(emulator_db(clean_stack))
    customer, start = f"audit-{unique}", datetime(2026, 1, 5, 9, tzinfo=UTC)
    for i in range(5):
        log.append(customer, audit.entry(
            at=start + timedelta(minutes=i), actor=f"key:{'a' if i % 2 else 'b'}",
            role="read", action="GET /v1/alerts", resource_path="/v1/alerts", outcome=200,
            ip="10.0.0.1", user_agent="test"))
    first, token = log.page(customer, None, None, 2, None)
    assert [e["at"] for e in first] == [start + timedelta(minutes=4),
                                        start + timedelta(minutes=3)]
    rest, end = log.page(customer, None, None, 10, token)
    assert len(rest) == 3 and end is None
    by_a, _ = log.page(customer, None, "key:a", 10, None)
    assert [e["at"].minute for e in by_a] == [3, 1]
    recent, _ = log.page(customer, start + timedelta(minutes=3), None, 10, None)
    assert len(recent) == 2
    assert log.page(f"other-{unique}", None, None, 10, None) == ([], None)
    assert first[0]["expire_at"].year == 2032
