"""Hostile input for every door into Upstream, pure and fast: the CSV reader, the FHIR mapper,
the 835 reader, both webhook receivers, the JSON API and the dashboard's sign-in pages. Each
must end every input as a result or a reasoned refusal: no other exception, no 5xx, nothing
silently dropped."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SHARED
from tests.unit.test_api import call, setup
from tests.unit.test_ingest import CTX
from tests.unit.test_second_factor_pages import _world
from tests.unit.test_webhooks import deps, ehr_headers, sign
from upstream.domain.fhir_input import Unreadable, iter_resources
from upstream.domain.fhir_map import map_resource
from upstream.domain.headers import map_columns
from upstream.domain.ingest import Rejected, parse_records
from upstream.domain.records import RecordKind
from upstream.domain.remittance import RemittanceUnreadable, read_835
from upstream.domain.table import UnreadableFile, open_table
from upstream.services.dashboard import handle
from upstream.services.sso_sign_in import SsoDeps
from upstream.services.web_pages import WebRequest
from upstream.services.webhooks import receive_athena, receive_ehr

HEADERS = ["Claim #", "Patient ID", "Primary Insurance", "CPT Code", "DOS", "Billed", "Paid",
           "Claim Status", "Denial Reason", "Units", "Auth Number", "Rendering NPI", "Notes"]
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
HOSTILE_CELLS = st.sampled_from(["=HYPERLINK(\"x\")", "@SUM(A1)", "+1", "-2+3+cmd|x", "\t=1",
                                 "9" * 5000, "\x00", "\ufeff", "97153.0", "$1,234.50",
                                 "(12.00)", "13/45/2024", "45000", "CO-16; N290", ""])
CELL = st.one_of(TEXT, HOSTILE_CELLS)


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


@given(rows=st.lists(st.lists(CELL, max_size=len(HEADERS) + 2), max_size=20),
       header=st.permutations(HEADERS), delimiter=st.sampled_from([",", ";", "\t", "|"]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"]))
def test_csv_every_row_is_accepted_or_rejected_with_a_reason(
        rows: list[list[str]], header: list[str], delimiter: str, encoding: str) -> None:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    try:
        table = open_table(io.BytesIO(_encode(out.getvalue(), encoding)),
                           lambda c: not map_columns(c, RecordKind.CLAIMS).missing_required())
    except UnreadableFile as exc:
        assert exc.reason
        return
    report, items = parse_records(table, RecordKind.CLAIMS, CTX)
    parsed = list(items)
    assert report.rows == len(parsed) == report.accepted + report.rejected
    assert all(r.reason for r in parsed if isinstance(r, Rejected))


@given(st.binary(max_size=3000))
def test_csv_any_bytes_read_or_refused(data: bytes) -> None:
    try:
        table = open_table(io.BytesIO(data), lambda c: True)
        report, items = parse_records(table, RecordKind.CLAIMS, CTX)
        parsed = list(items)
        assert report.rows == len(parsed) == report.accepted + report.rejected
    except UnreadableFile as exc:
        assert exc.reason


FHIR_DIR = SHARED / "data"
REAL = [p for p in sorted(FHIR_DIR.rglob("*.json")) if p.stat().st_size < 200_000][:60]
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=False, allow_infinity=False), TEXT)
JSON = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TEXT, inner, max_size=5), max_leaves=25)


def _mutate(value: Any, path: list[int], replacement: Any) -> Any:
    """Replaces the node reached by walking `path` (indexes into dict values / list items)."""
    if not path or not isinstance(value, dict | list) or not value:
        return replacement
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = keys[path[0] % len(keys)]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[key] = _mutate(value[key], path[1:], replacement)  # type: ignore[index]
    return copy


def _accounted(resource: Any) -> None:
    result = map_resource(resource, CTX)
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    mapped = result.lines or result.outcomes or result.coverages or result.issues \
        or result.ignored
    assert mapped or kind == "Bundle", resource  # an empty Bundle holds nothing to report


@given(kind=st.sampled_from(["Claim", "ClaimResponse", "ExplanationOfBenefit", "Coverage",
                             "Bundle", "Patient"]), body=st.dictionaries(TEXT, JSON, max_size=6))
def test_fhir_any_resource_maps_or_is_reported(kind: str, body: dict[str, Any]) -> None:
    _accounted({**body, "resourceType": kind})


@given(index=st.integers(0, max(len(REAL) - 1, 0)), path=st.lists(st.integers(0, 50),
                                                                   max_size=6),
       replacement=JSON)
def test_fhir_real_resources_mutated_map_or_are_reported(index: int, path: list[int],
                                                         replacement: Any) -> None:
    if not REAL:
        return
    resource = json.loads(REAL[index].read_text())
    if isinstance(resource, dict):
        _accounted(_mutate(resource, path, replacement))


@given(st.binary(max_size=2000))
def test_fhir_any_bytes_are_read_line_by_line_or_reported(data: bytes) -> None:
    for item in iter_resources(data):
        if isinstance(item, Unreadable):
            assert item.reason
        else:
            map_resource(item, CTX)


X12 = [p for p in sorted((SHARED / "data" / "x12-835").glob("*/*"))
       if p.is_file() and p.name != "SOURCE.txt" and p.suffix not in (".csv", ".txt")]


@given(index=st.integers(0, max(len(X12) - 1, 0)), cut=st.integers(0, 10_000),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       drop=st.integers(0, 200))
def test_835_mutated_files_read_or_refused_with_a_reason(
        index: int, cut: int, flips: list[tuple[int, int]], drop: int) -> None:
    data = bytearray(Path(X12[index]).read_bytes())
    for at, byte in flips:
        if data:
            data[at % len(data)] = byte
    segments = bytes(data).split(b"~")
    if len(segments) > 3:
        del segments[drop % len(segments)]
    mutated = b"~".join(segments)[: max(cut, 50)]
    try:
        remittance = read_835(mutated)
    except RemittanceUnreadable as exc:
        assert str(exc)
        return
    assert remittance is not None


@given(value=JSON, kind=st.sampled_from(["Claim", "Bundle", None]),
       depth=st.integers(0, 3000), key=TEXT,
       extra=st.dictionaries(st.sampled_from(["X-Customer-ID", "X-Timestamp", "X-Signature",
                                              "X-Idempotency-Key", "X-Hub-Signature"]),
                             st.text(max_size=40), max_size=3))
def test_receivers_never_answer_5xx_to_signed_input(value: Any, kind: str | None, depth: int,
                                                    key: str, extra: dict[str, str]) -> None:
    body = json.dumps({"resourceType": kind, "id": key, "x": value}).encode()
    body = body[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    d = deps()
    answers = [receive_ehr(body, {**ehr_headers(body, key="k"), **extra}, d),
               receive_ehr(body, extra, d),
               receive_athena("acme", body, {"X-Hub-Signature": sign(body), **extra}, d),
               receive_athena(key or "acme", body, extra, d)]
    for answer in answers:
        assert answer.status < 500
        assert answer.status == 200 or answer.content_type == "application/problem+json"


ROUTE_PATHS = ["/v1/alerts", "/v1/alerts/{id}", "/v1/alerts/{id}/{id}", "/v1/authorizations",
               "/v1/authorizations/{id}/renewed", "/v1/uploads", "/v1/uploads/{id}",
               "/v1/claims/summary", "/v1/settings", "/v1/automation/actions",
               "/v1/automation/actions/{id}/approve", "/v1/automation/actions/{id}/release-hold",
               "/v1/automation/log", "/v1/risk/score", "/v1/admin/dead-letters",
               "/v1/admin/dead-letters/{id}/replay", "/v1/{id}"]
ID = st.one_of(TEXT.filter(lambda t: "/" not in t), st.sampled_from(
    ["a1", "__x__", ".", "..", "a\nb", "u1", "A1", "claims", "x" * 2000]))


@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       template=st.sampled_from(ROUTE_PATHS), ident=ID,
       query=st.dictionaries(st.sampled_from(["status", "page_size", "page_token", "payer",
                                              "weeks", "as_of", "type", "severity", "x"]),
                             TEXT, max_size=3),
       body=st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=300)),
       scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", ""]))
def test_the_api_never_answers_5xx(method: str, template: str, ident: str,
                                   query: dict[str, str], body: bytes, scheme: str) -> None:
    api, _, tokens = setup()
    path = template.replace("{id}", ident)
    status, answer = call(api, method, path, tokens["write"] if scheme else None, query, body)
    assert status < 500, (method, path, answer)


SIGN_IN_DOORS = [("/login", "GET"), ("/login", "POST"), ("/welcome", "GET"),
                 ("/welcome", "POST"), ("/login/link", "POST"), ("/login/link/finish", "GET"),
                 ("/login/link/finish", "POST"), ("/login/sso", "GET"),
                 ("/login/sso/callback", "GET"), ("/login/2fa", "GET"), ("/login/2fa", "POST")]
COOKIE_NAMES = st.sampled_from(["upstream_session", "upstream_form", "upstream_sso",
                                "upstream_2fa", "x"])


@given(door=st.sampled_from(SIGN_IN_DOORS),
       query=st.dictionaries(st.sampled_from(["practice", "next", "code", "state", "error",
                                              "email", "x"]), TEXT, max_size=4),
       form=st.dictionaries(st.sampled_from(["email", "password", "key", "code", "form_token",
                                             "next", "confirm", "x"]), TEXT, max_size=5),
       raw=st.one_of(st.none(), st.binary(max_size=300)),
       cookies=st.dictionaries(COOKIE_NAMES, st.text(st.characters(
           min_codepoint=33, max_codepoint=126, blacklist_characters=";,"), max_size=80),
           max_size=3))
def test_the_sign_in_doors_never_answer_5xx(door: tuple[str, str], query: dict[str, str],
                                            form: dict[str, str], raw: bytes | None,
                                            cookies: dict[str, str]) -> None:
    """Anyone may knock on these pages (no session yet): whatever they send, an answer
    below 500, and never a session cookie without a right password, link or code."""
    deps, stores, _, _, _ = _world()
    stores.tenants["acme"]["sso"] = {"issuer": "https://idp.acme.test", "client_id": "c",
                                     "domains": ["acme.test"]}
    deps = replace(deps, sso=lambda: SsoDeps(
        provider=_ProviderOffline(), people=None, toolkit=None,  # type: ignore[arg-type]
        tenant=stores.tenants.get, client_secret=lambda c: "s", first_use=lambda k, e: True,
        dashboard_url="https://dash.acme.test"))
    body = raw if raw is not None else urlencode(form).encode()
    jar = "; ".join(f"{k}={v}" for k, v in cookies.items())
    page = handle(WebRequest(door[1], door[0], query, {"Cookie": jar}, body, True), deps)
    assert page.status < 500 or page.status == 503, (door, page.status)
    assert "upstream_session=" not in page.headers.get("Set-Cookie", "") \
        or form.get("password") in ("owner-password", "viewer-password", "biller-password")


class _ProviderOffline:
    """The practice's provider as far as a stranger's request can reach it: discovery (the
    start page builds its link), never the code exchange (no sealed state gets that far)."""

    def endpoints(self, settings: Any) -> Any:
        from upstream.adapters.oidc_provider import Endpoints

        return Endpoints(settings.issuer, settings.issuer + "/authorize",
                         settings.issuer + "/token", settings.issuer + "/jwks")

    def exchange(self, *args: Any) -> str:
        raise AssertionError("a forged state reached the code exchange")

    def verify(self, *args: Any) -> dict[str, Any]:
        raise AssertionError("a forged state reached the token check")
