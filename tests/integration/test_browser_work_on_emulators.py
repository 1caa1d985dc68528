"""The browser's work against the real emulators: a signed PUT through the stack's upload
gateway into Storage (and what it refuses), the CORS preflight, and the pre-submission
queue's Firestore query."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import requests

from tests.conftest import emulator_db
from upstream.adapters.clients import storage_client
from upstream.adapters.firestore_risk import flagged_lines
from upstream.adapters.firestore_store import tenant_collection
from upstream.adapters.secrets import LocalFileSecretStore
from upstream.adapters.signed_urls import LOCAL_SIGNING_KEY_NAME, BrowserUploads, LocalKeySigner
from upstream.stack import manager
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators


def _uploads(config: StackConfig) -> BrowserUploads:
    key = LocalFileSecretStore(config.secrets_file).get(LOCAL_SIGNING_KEY_NAME)
    assert key is not None
    signer = LocalKeySigner(json.loads(key), config.bucket, config.url(config.gateway_port))
    return BrowserUploads(storage_client(), config.bucket, signer)


def test_a_signed_put_lands_once_and_a_changed_one_is_refused(clean_stack: StackConfig,
                                                              unique: str) -> None:
    uploads = _uploads(clean_stack)
    name = f"uploads/nobody-{unique}/claims/20260107T120000-0a1b2c3d-x.csv"
    signed = uploads.put_url(name, 1000, 15)
    origin = manager.function_urls(clean_stack)["api"]
    preflight = requests.options(signed.url, timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": "PUT"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    stranger = requests.options(signed.url, timeout=10, headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
    body = b"Claim #,CPT Code\nC-1,97153\n"
    assert requests.put(signed.url.replace(f"nobody-{unique}", f"other-{unique}"), data=body,
                        headers=signed.headers, timeout=10).status_code == 403
    assert requests.put(signed.url, data=b"x" * 1001, headers=signed.headers,
                        timeout=10).status_code == 403
    assert requests.put(signed.url, data=body, headers={**signed.headers,
                        "Content-Type": "text/html"}, timeout=10).status_code == 403
    assert uploads.md5_and_size(name) is None
    landed = requests.put(signed.url, data=body, headers=signed.headers, timeout=10)
    assert landed.status_code == 200
    found = uploads.md5_and_size(name)
    assert found is not None and found[1] == len(body)
    expiring = uploads.put_url(name, 1000, 1 / 60)  # one second
    time.sleep(2.1)
    late = requests.put(expiring.url, data=body, headers=expiring.headers, timeout=10)
    assert late.status_code == 403 and "expired" in late.text


def test_a_resumable_session_through_the_gateway_survives_a_lost_answer(
        clean_stack: StackConfig, unique: str) -> None:
    """A large file's path through the real gateway into the Storage emulator: a signed POST
    starts the session (CORS exposes its Location), a chunk sent twice and a status query
    move nothing, the last chunk stores exactly the file; a session is bound to its object,
    and its start to its signature."""
    import hashlib

    from upstream.adapters.signed_urls import CHUNK_GRANULE

    uploads = _uploads(clean_stack)
    name = f"uploads/nobody-{unique}/claims/20260107T120000-0a1b2c3d-big.csv"
    data = (b"Claim #,CPT Code\n" + b"C-1,97153\n" * 60_000)[:2 * CHUNK_GRANULE + 12_345]
    signed = uploads.put_url(name, 10 * CHUNK_GRANULE, 15, resumable=True)
    origin = manager.function_urls(clean_stack)["api"]
    preflight = requests.options(signed.url, timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "content-range" in preflight.headers["Access-Control-Allow-Headers"]
    moved = signed.url.replace(f"nobody-{unique}", f"other-{unique}")
    assert requests.post(moved, headers=signed.headers, timeout=10).status_code == 403
    assert requests.put(signed.url, data=data, headers=signed.headers,
                        timeout=10).status_code == 403  # a start URL is no PUT URL
    started = requests.post(signed.url, headers={**signed.headers, "Origin": origin},
                            timeout=10)
    assert started.status_code == 201
    assert "Location" in started.headers["Access-Control-Expose-Headers"]
    session = started.headers["Location"]
    assert "upload_id=" in session and "X-Goog-Signature" not in session
    total = len(data)

    def chunk(first: int, last: int) -> requests.Response:
        return requests.put(session, data=data[first:last + 1], timeout=30, headers={
            "Content-Range": f"bytes {first}-{last}/{total}"})

    first = chunk(0, CHUNK_GRANULE - 1)
    assert first.status_code == 308 and first.headers["Range"] == f"bytes=0-{CHUNK_GRANULE - 1}"
    assert chunk(0, CHUNK_GRANULE - 1).status_code == 308  # its answer was lost: sent again
    status = requests.put(session, timeout=10, headers={"Content-Range": f"bytes */{total}"})
    assert status.status_code == 308 and status.headers["Range"] == f"bytes=0-{CHUNK_GRANULE - 1}"
    elsewhere = session.replace("-big.csv", "-other.csv")
    assert requests.put(elsewhere, timeout=10, headers={
        "Content-Range": f"bytes */{total}"}).status_code == 404
    assert uploads.md5_and_size(name) is None  # nothing stored before the last byte
    assert chunk(CHUNK_GRANULE, total - 1).status_code == 200
    found = uploads.md5_and_size(name)
    assert found == (hashlib.md5(data).hexdigest(), total)
    expiring = uploads.put_url(name, 10 * CHUNK_GRANULE, 1 / 60, resumable=True)
    time.sleep(2.1)
    late = requests.post(expiring.url, headers=expiring.headers, timeout=10)
    assert late.status_code == 403 and "expired" in late.text


def test_the_queue_lists_pending_flagged_lines_newest_first(clean_stack: StackConfig,
                                                            unique: str) -> None:
    db = emulator_db(clean_stack)
    customer = f"q-{unique}"
    claims = tenant_collection(db, customer, "claims")
    scores = tenant_collection(db, customer, "risk_scores")
    rows = [("d1", "HIGH", "PENDING", 3), ("d2", "MEDIUM", "PENDING", 2),
            ("d3", "HIGH", "DENIED", 1), ("d4", "LOW", "PENDING", 4)]
    for doc_id, category, outcome, minute in rows:
        claims.document(doc_id).set({"claim_id": doc_id, "outcome": outcome, "payer": "Aetna",
                                     "cpt": "97153", "patient_key": "k" * 64})
        scores.document(doc_id).set({"claim_id": doc_id, "line": 1, "score": 70,
                                     "category": category, "recommendation": "hold",
                                     "factors": [{"name": "x", "points": 5}], "fixes": [],
                                     "scored_at": datetime(2026, 1, 7, 12, minute, tzinfo=UTC)})
    found = flagged_lines(db, customer, 10)
    assert [row["claim_id"] for row in found] == ["d1", "d2"]
    assert all("patient_key" not in row for row in found)
    assert flagged_lines(db, f"other-{unique}", 10) == []
