"""The athenaOne client against the fake athenaOne over real HTTP on loopback: the request
shapes (token by Basic auth and form, bearer on data calls), the token cache, and the retries.
No emulator needed; the server is started here."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from upstream.adapters.athena_api import (
    MAX_ATTEMPTS,
    AthenaAuthError,
    AthenaClient,
    AthenaCredentials,
    AthenaUnavailable,
)
from upstream.stack.fake_athena import FIXTURES, FakeAthena
from upstream.stack.quiet_server import serve

CREDENTIALS = AthenaCredentials("client-1", "s3cret")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[tuple[FakeAthena, str]]:
    app = FakeAthena(json.loads(FIXTURES.read_text()),
                     lambda: {CREDENTIALS.client_id: CREDENTIALS.client_secret})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve(app, "127.0.0.1", port)
    yield app, f"http://127.0.0.1:{port}"
    server.shutdown()


def client(url: str, credentials: AthenaCredentials = CREDENTIALS,
           clock: Clock | None = None) -> tuple[AthenaClient, list[float]]:
    slept: list[float] = []
    return AthenaClient(url, credentials, clock=clock or Clock(), sleep=slept.append), slept


def test_fetches_a_claim_and_insurances_with_one_token(api: tuple[FakeAthena, str]) -> None:
    app, url = api
    athena, slept = client(url)
    claim = athena.claim("195900", "30001")
    assert claim is not None and claim["claimid"] == 30001
    for _ in range(4):
        athena.claim("195900", "30002")
    assert athena.patient_insurances("195900", str(claim["patientid"]))[0]["insuranceid"]
    assert athena.token_requests == 1 and slept == []
    methods = [(m, p.split("/")[1], scheme) for m, p, scheme in app.requests]
    assert methods[0] == ("POST", "oauth2", "Basic")
    assert all(scheme == "Bearer" for m, _, scheme in methods[1:])


def test_a_token_is_renewed_before_it_expires_and_after_a_401(
        api: tuple[FakeAthena, str]) -> None:
    app, url = api
    clock = Clock()
    athena, _ = client(url, clock=clock)
    athena.claim("195900", "30001")
    clock.now += 3600 - 59  # inside the last minute of the hour: renewed, never used stale
    athena.claim("195900", "30001")
    assert athena.token_requests == 2
    app.expire_tokens()  # revoked server-side: one 401, a new token, the answer
    assert athena.claim("195900", "30001") is not None
    assert athena.token_requests == 3


def test_429_and_5xx_are_retried_with_backoff(api: tuple[FakeAthena, str]) -> None:
    app, url = api
    athena, slept = client(url)
    athena.claim("195900", "30001")
    app.faults.extend([429, 503, 502])
    assert athena.claim("195900", "30002") is not None
    assert len(slept) == 3 and slept[0] == 0.0  # Retry-After: 0 honoured
    assert all(0 <= s <= 8.0 for s in slept)


def test_a_persistent_failure_gives_up_after_the_attempts(api: tuple[FakeAthena, str]) -> None:
    app, url = api
    athena, slept = client(url)
    athena.claim("195900", "30001")
    app.faults.extend([500] * MAX_ATTEMPTS)
    with pytest.raises(AthenaUnavailable):
        athena.claim("195900", "30002")
    assert len(slept) == MAX_ATTEMPTS - 1


def test_a_missing_claim_is_none_and_a_wrong_secret_an_auth_error(
        api: tuple[FakeAthena, str]) -> None:
    _, url = api
    athena, _ = client(url)
    assert athena.claim("195900", "99999") is None
    assert athena.patient_insurances("195900", "1") == []
    wrong, _ = client(url, AthenaCredentials("client-1", "nope"))
    with pytest.raises(AthenaAuthError):
        wrong.claim("195900", "30001")


def test_an_unreachable_api_is_unavailable_not_a_crash() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    athena, slept = client(f"http://127.0.0.1:{port}")
    with pytest.raises(AthenaUnavailable):
        athena.claim("195900", "30001")
    assert len(slept) == MAX_ATTEMPTS - 1


def test_the_fake_checks_the_token_request_shape(api: tuple[FakeAthena, str]) -> None:
    import requests

    _, url = api
    good: dict[str, Any] = {"grant_type": "client_credentials",
                            "scope": "athena/service/Athenanet.MDP.*"}
    auth = (CREDENTIALS.client_id, CREDENTIALS.client_secret)
    assert requests.post(url + "/oauth2/v1/token", data=good, auth=auth, timeout=5).ok
    assert requests.post(url + "/oauth2/v1/token", data={**good, "scope": "x"}, auth=auth,
                         timeout=5).status_code == 400
    assert requests.post(url + "/oauth2/v1/token", data=good, timeout=5).status_code == 401
    assert requests.get(url + "/v1/195900/claims/30001", timeout=5).status_code == 401


def test_referral_auths_are_read_page_by_page_expired_included(
        api: tuple[FakeAthena, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from upstream.adapters import athena_api

    app, url = api
    monkeypatch.setattr(athena_api, "PAGE_SIZE", 1)
    athena, _ = client(url)
    found = athena.referral_auths("195900", "7102")
    assert [r["referralauthid"] for r in found] == [216003, 216004, 216005]
    paths = [p for _, p, _ in app.requests if p.endswith("/referralauths")]
    assert len(paths) == 3
    assert [r["expired"] for r in athena.referral_auths("195900", "7101")] == [False, True]
    assert athena.referral_auths("195900", "424242") == []  # unknown patient: 404 → none


def test_a_next_link_that_never_ends_stops_at_the_page_cap(
        api: tuple[FakeAthena, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from upstream.adapters import athena_api

    _, url = api
    monkeypatch.setattr(athena_api, "MAX_PAGES", 3)
    athena, _ = client(url)
    looping = {"referralauths": [{"referralauthid": 1}], "totalcount": 99, "next": "/again"}
    monkeypatch.setattr(athena, "_get", lambda path, params=None: looping)
    assert len(athena.referral_auths("195900", "7101")) == 3
