"""Browser uploads without servers: object names a file name cannot steer, the signed PUT
request's checks (the gateway signs again with google-cloud-storage's V4 code), and the
dashboard's upload, follow, summary and rejects pages with their refusals. The whole path in
Chromium against the stack: tests/e2e/test_dashboard_browser.py."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_dashboard import request
from tests.unit.test_people import people_dashboard, person_cookie
from upstream.adapters.signed_urls import LENGTH_HEADER, LocalKeySigner, SignedPut, new_local_key
from upstream.services.dashboard import DashboardDeps
from upstream.services.dashboard_uploads import (
    _OBJECT,
    MAX_UPLOAD_BYTES,
    RESUMABLE_FROM_BYTES,
    object_name,
    safe_file_name,
)
from upstream.stack.storage_gateway import Gateway

KEY = json.loads(new_local_key())
ENDPOINT = "http://127.0.0.1:9999"
NOW = datetime(2026, 1, 7, 12, tzinfo=UTC)


@given(st.text(max_size=300))
def test_any_file_name_becomes_one_safe_path_part(name: str) -> None:
    safe = safe_file_name(name)
    assert safe and len(safe) <= 100 and "/" not in safe and "\\" not in safe
    assert not safe.startswith(".") and re.fullmatch(r"[A-Za-z0-9._-]+", safe)
    assert _OBJECT.match(object_name("acme", "claims", name, NOW))


@pytest.mark.parametrize("name", ["../../uploads/beta/claims/x.csv", "..", "C:\\x\\..\\y.csv",
                                  "uploads/beta/x", "\x00evil.csv", ".bashrc"])
def test_path_tricks_stay_under_the_practice(name: str) -> None:
    made = object_name("acme", "claims", name, NOW)
    assert made.startswith("uploads/acme/claims/20260107T120000-")
    assert "/../" not in made and made.count("/") == 3


def _request_of(signed: SignedPut) -> tuple[str, dict[str, str], dict[str, str]]:
    parts = urlsplit(signed.url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    headers = {k.lower(): v for k, v in signed.headers.items()}
    return parts.path, query, headers


def test_the_gateway_accepts_exactly_the_signed_request() -> None:
    signer = LocalKeySigner(KEY, "upstream-uploads", ENDPOINT)
    gateway = Gateway("http://storage", ENDPOINT, "http://dash", KEY)
    signed = signer.put_url("uploads/acme/claims/20260107T120000-0a1b2c3d-jan.csv", 1000, 15)
    path, query, headers = _request_of(signed)
    now = datetime.now(UTC)
    assert gateway.refusal("PUT", path, query, headers, 10, now) is None
    assert "larger" in str(gateway.refusal("PUT", path, query, headers, 1001, now))
    other = path.replace("/acme/", "/beta/")
    assert "signature" in str(gateway.refusal("PUT", other, query, headers, 10, now))
    assert "signature" in str(gateway.refusal("PUT", path, query, {
        **headers, LENGTH_HEADER: "0,999999999"}, 10, now))
    assert "signature" in str(gateway.refusal("PUT", path, query, {
        **headers, "content-type": "text/html"}, 10, now))
    assert "signature" in str(gateway.refusal("GET", path, query, headers, 10, now))
    assert "expired" in str(gateway.refusal("PUT", path, query, headers, 10,
                                            now + timedelta(minutes=16)))
    forged = {**query, "X-Goog-Signature": "00" * 256}
    assert "signature" in str(gateway.refusal("PUT", path, forged, headers, 10, now))
    for broken in ({}, {**query, "X-Goog-Date": "yesterday"},
                   {**query, "X-Goog-Algorithm": "GOOG4-HMAC-SHA256"},
                   {**query, "X-Goog-Expires": "999999999"}):
        assert gateway.refusal("PUT", path, broken, headers, 10, now) is not None
    stranger = Gateway("http://storage", ENDPOINT, "http://dash", json.loads(new_local_key()))
    assert "signature" in str(stranger.refusal("PUT", path, query, headers, 10, now))


def test_a_resumable_start_is_signed_as_a_post_carrying_its_header() -> None:
    signer = LocalKeySigner(KEY, "upstream-uploads", ENDPOINT)
    gateway = Gateway("http://storage", ENDPOINT, "http://dash", KEY)
    signed = signer.put_url("uploads/acme/claims/20260107T120000-0a1b2c3d-big.csv", 1000, 15,
                            resumable=True)
    assert signed.headers["x-goog-resumable"] == "start"
    path, query, headers = _request_of(signed)
    now = datetime.now(UTC)
    assert gateway.refusal("POST", path, query, headers, 0, now) is None
    assert "signature" in str(gateway.refusal("PUT", path, query, headers, 0, now))
    without = {k: v for k, v in headers.items() if k != "x-goog-resumable"}
    assert "signature" in str(gateway.refusal("POST", path, query, without, 0, now))
    assert "signature" in str(gateway.refusal("POST", path.replace("/acme/", "/beta/"), query,
                                              headers, 0, now))
    single = signer.put_url("uploads/acme/claims/20260107T120000-0a1b2c3d-big.csv", 1000, 15)
    path, query, headers = _request_of(single)
    assert "signature" in str(gateway.refusal("POST", path, query, {
        **headers, "x-goog-resumable": "start"}, 0, now))  # a PUT's URL cannot start a session


class Files:
    def __init__(self) -> None:
        self.signed: list[tuple[str, int, float]] = []
        self.resumable: list[bool] = []
        self.objects: dict[str, bytes] = {}

    def put_url(self, name: str, max_bytes: int, minutes: float,
                resumable: bool = False) -> SignedPut:
        self.signed.append((name, max_bytes, minutes))
        self.resumable.append(resumable)
        return SignedPut(f"{ENDPOINT}/upstream-uploads/{name}?X-Goog-Signature=s",
                         {"Content-Type": "application/octet-stream"}, NOW)

    def md5_and_size(self, name: str) -> tuple[str, int] | None:
        data = self.objects.get(name)
        return None if data is None else ("ab" * 16, len(data))

    def read(self, name: str, limit: int) -> bytes | None:
        return self.objects.get(name)


def _dashboard() -> tuple[DashboardDeps, Any, Files, str, str]:
    base, stores, _, _ = people_dashboard()
    files = Files()
    deps = DashboardDeps(stores=stores, session_key=base.session_key, clock=base.clock,
                         identity=base.identity, sign_in=base.sign_in, uploads=files,
                         upload_endpoint=ENDPOINT)
    cookie = person_cookie(deps, "biller@acme.test", "biller-password")
    page = request(deps, "GET", "/upload", cookie)
    assert page.status == 200, page.html
    csrf = re.search(r'data-csrf="([^"]+)"', page.html)
    assert csrf
    return deps, stores, files, cookie, csrf.group(1)


def test_the_upload_page_allows_its_own_script_and_storage_only() -> None:
    deps, _, _, cookie, _ = _dashboard()
    page = request(deps, "GET", "/upload", cookie)
    policy = page.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in page.html
    assert f"connect-src 'self' {ENDPOINT};" in policy and "unsafe" not in policy
    assert "script-src" not in request(deps, "GET", "/", cookie).headers[
        "Content-Security-Policy"]  # every other page: no script at all


def test_a_signed_url_only_for_a_real_file_of_a_known_kind() -> None:
    deps, _, files, cookie, csrf = _dashboard()
    good = request(deps, "POST", "/uploads/new", cookie, {
        "csrf": csrf, "kind": "claims", "filename": "../../beta/Jan 2026.csv", "size": "120"})
    assert good.status == 200 and good.headers["Content-Type"] == "application/json"
    body = json.loads(good.html)
    assert body["object"].startswith("uploads/acme/claims/") and "beta" not in body["object"]
    assert body["object"].endswith("-Jan_2026.csv") and files.signed[0][1] == MAX_UPLOAD_BYTES
    for form, why in (({"kind": "secrets", "size": "5"}, "choose"), ({"kind": "claims",
                      "size": "0"}, "empty"), ({"kind": "claims", "size": str(
                          MAX_UPLOAD_BYTES + 1)}, "over"), ({"kind": "claims", "size": "x"},
                                                            "size")):
        refused = request(deps, "POST", "/uploads/new", cookie, {"csrf": csrf, **form})
        assert refused.status == 400 and why in json.loads(refused.html)["error"]
    assert request(deps, "POST", "/uploads/new", cookie, {"kind": "claims",
                                                          "size": "5"}).status == 403
    viewer = person_cookie(deps, "viewer@acme.test", "viewer-password")
    assert request(deps, "GET", "/upload", viewer).status == 403
    assert len(files.signed) == 1 and files.resumable == [False] and not body["resumable"]


@pytest.mark.parametrize(("threshold", "size", "resumable", "chunk"), [
    (RESUMABLE_FROM_BYTES, RESUMABLE_FROM_BYTES - 1, False, 8 * 2**20),
    (RESUMABLE_FROM_BYTES, RESUMABLE_FROM_BYTES, True, 8 * 2**20),
    (RESUMABLE_FROM_BYTES, MAX_UPLOAD_BYTES, True, 8 * 2**20),
    (256 * 1024, 700_000, True, 256 * 1024),
    (300 * 1024, 700_000, True, 256 * 1024)])
def test_a_large_file_goes_as_a_resumable_session_in_legal_chunks(
        threshold: int, size: int, resumable: bool, chunk: int) -> None:
    deps, _, files, cookie, csrf = _dashboard()
    lowered = replace(deps, resumable_from=threshold)
    answer = request(lowered, "POST", "/uploads/new", cookie, {
        "csrf": csrf, "kind": "claims", "filename": "big.csv", "size": str(size)})
    body = json.loads(answer.html)
    assert (body["resumable"], body["chunk"]) == (resumable, chunk)
    assert files.resumable == [resumable] and body["chunk"] % (256 * 1024) == 0


def test_following_an_upload_to_its_summary_and_rejects_within_the_practice() -> None:
    deps, stores, files, cookie, csrf = _dashboard()
    name = json.loads(request(deps, "POST", "/uploads/new", cookie, {
        "csrf": csrf, "kind": "claims", "filename": "jan.csv", "size": "3"}).html)["object"]
    assert request(deps, "GET", "/uploads/follow", cookie,
                   query={"object": name}).status == 404  # not arrived yet
    files.objects[name] = b"abc"
    upload_id = f"md5-{'ab' * 16}-3"
    waiting = request(deps, "GET", "/uploads/follow", cookie, query={"object": name})
    assert waiting.status == 200  # arrived, not read yet: the page waits, refreshing
    assert 'http-equiv="refresh"' in waiting.html and 'data-status="waiting"' in waiting.html
    assert request(deps, "GET", f"/uploads/{upload_id}", cookie).status == 404
    summaries = {upload_id: {"status": "complete", "rows": 3, "accepted": 2, "rejected": 1,
                             "reasons": {"invalid_cpt": 1},
                             "rejects_object": "rejects/acme/claims/x.csv"}}
    setattr(stores, "upload",  # noqa: B010 - the fake store learns this upload
            lambda customer, uid: summaries.get(uid) if customer == "acme" else None)
    found = request(deps, "GET", "/uploads/follow", cookie, query={"object": name})
    assert found.status == 303 and found.headers["Location"] == f"/uploads/{upload_id}"
    files.objects["rejects/acme/claims/x.csv"] = b"line,reason\r\n2,invalid_cpt\r\n"
    done = request(deps, "GET", f"/uploads/{upload_id}", cookie)
    assert 'data-status="complete"' in done.html and "refresh" not in done.html
    assert 'id="rejects-link"' in done.html
    rejects = request(deps, "GET", f"/uploads/{upload_id}/rejects.csv", cookie)
    assert rejects.status == 200 and "invalid_cpt" in rejects.html
    assert "attachment" in rejects.headers["Content-Disposition"]
    for other in (name.replace("/acme/", "/beta/"), "uploads/acme/../beta/x",
                  "rejects/acme/x.csv", ""):
        assert request(deps, "GET", "/uploads/follow", cookie,
                       query={"object": other}).status == 404
    summaries[upload_id]["rejects_object"] = "rejects/beta/claims/x.csv"
    assert request(deps, "GET", f"/uploads/{upload_id}/rejects.csv", cookie).status == 404
