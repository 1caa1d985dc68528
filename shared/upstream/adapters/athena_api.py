"""athenaOne's API for the fetcher: 2-legged OAuth (client credentials), a token cached until
shortly before it expires, and retries with backoff where athenahealth asks for them.

- Token: `POST {base}/oauth2/v1/token`, client id and secret in HTTP Basic auth,
  `grant_type=client_credentials&scope=athena/service/Athenanet.MDP.*`; tokens live an hour
  and the token endpoint is rate-limited (50 a minute in production, 5 in preview), which is
  why a token is reused until 60 s before `expires_in` runs out.
- 429 and 5xx (and connection errors) are retried with exponential backoff and full jitter
  (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015), honouring `Retry-After`;
  a 401 on a data call drops the cached token and retries once with a new one.
- 404 is an answer (the claim is gone), not an error.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

SCOPE = "athena/service/Athenanet.MDP.*"
TOKEN_PATH = "/oauth2/v1/token"
TOKEN_MARGIN_SECONDS = 60
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
RETRY_AFTER_CAP_SECONDS = 30.0
TIMEOUT_SECONDS = (3.05, 10.0)  # connect, read: well inside the function's timeout
RETRYABLE = frozenset({429, 500, 502, 503, 504})
# athenaOne pages lists; 100 a page keeps a patient's authorizations to one call in practice.
PAGE_SIZE = 100
MAX_PAGES = 20


class AthenaUnavailable(RuntimeError):
    """Retries exhausted: the event is retried later by Pub/Sub, then dead-lettered."""


class AthenaAuthError(RuntimeError):
    """The credentials are refused: a configuration problem, not a transient one."""


@dataclass(frozen=True, slots=True)
class AthenaCredentials:
    client_id: str
    client_secret: str


class AthenaClient:
    def __init__(self, base_url: str, credentials: AthenaCredentials,
                 session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._credentials = credentials
        self._session = session or requests.Session()
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self.token_requests = 0

    def claim(self, practice_id: str, claim_id: str) -> dict[str, Any] | None:
        body = self._get(f"/v1/{practice_id}/claims/{claim_id}")
        if isinstance(body, list):  # some athenaOne GETs answer a one-element list
            body = body[0] if body else None
        return body if isinstance(body, dict) else None

    def patient_insurances(self, practice_id: str, patient_id: str) -> list[dict[str, Any]]:
        body = self._get(f"/v1/{practice_id}/patients/{patient_id}/insurances")
        items = body.get("insurances") if isinstance(body, dict) else None
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def referral_auths(self, practice_id: str, patient_id: str) -> list[dict[str, Any]]:
        """Every authorization of the patient, expired ones included (the calendar marks
        them), page by page (`limit`/`offset`, athenaOne's `next` says another page follows);
        at most MAX_PAGES pages, so a looping `next` cannot hold the function."""
        found: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            body = self._get(f"/v1/{practice_id}/patients/{patient_id}/referralauths",
                             {"showexpired": "true", "limit": str(PAGE_SIZE),
                              "offset": str(page * PAGE_SIZE)})
            items = body.get("referralauths") if isinstance(body, dict) else None
            if not isinstance(items, list):
                break
            found += [i for i in items if isinstance(i, dict)]
            if not body.get("next") or not items:
                break
        return found

    # --- transport -------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        refreshed = False
        while True:
            response = self._send("GET", path, authorized=True, params=params)
            if response.status_code == 401 and not refreshed:
                self._token, refreshed = None, True
                continue
            if response.status_code == 404:
                return None
            if response.status_code in (401, 403):
                raise AthenaAuthError(f"athenaOne refused the token ({response.status_code})")
            if response.status_code >= 400:
                raise AthenaUnavailable(f"athenaOne answered {response.status_code}")
            try:
                return response.json()
            except ValueError:
                raise AthenaUnavailable("athenaOne answered with something not JSON") from None

    def _bearer(self) -> str:
        with self._lock:
            if self._token and self._clock() < self._token[1]:
                return self._token[0]
            response = self._send("POST", TOKEN_PATH, authorized=False)
            if response.status_code in (400, 401, 403):
                raise AthenaAuthError(f"token request refused ({response.status_code})")
            if response.status_code >= 400:
                raise AthenaUnavailable(f"token endpoint answered {response.status_code}")
            try:
                body = response.json()
                token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
            except (ValueError, KeyError, TypeError):
                raise AthenaUnavailable("token endpoint answered without a token") from None
            self._token = (token, self._clock() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS))
            return token

    def _send(self, method: str, path: str, *, authorized: bool,
              params: dict[str, str] | None = None) -> requests.Response:
        for attempt in range(MAX_ATTEMPTS):
            try:
                if authorized:
                    response = self._session.request(
                        method, self._base + path, params=params, timeout=TIMEOUT_SECONDS,
                        headers={"Authorization": f"Bearer {self._bearer()}",
                                 "Accept": "application/json"})
                else:
                    self.token_requests += 1
                    response = self._session.post(
                        self._base + path, timeout=TIMEOUT_SECONDS,
                        auth=(self._credentials.client_id, self._credentials.client_secret),
                        data={"grant_type": "client_credentials", "scope": SCOPE})
            except requests.RequestException:
                response = None
            if response is not None and response.status_code not in RETRYABLE:
                return response
            if attempt + 1 < MAX_ATTEMPTS:
                self._sleep(self._delay(attempt, response))
        raise AthenaUnavailable(f"{method} {path.split('/')[1]} failed {MAX_ATTEMPTS} times")

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), RETRY_AFTER_CAP_SECONDS)
        return self._rng.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt))
