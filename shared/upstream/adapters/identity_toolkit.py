"""Signing a person in: Identity Platform's REST API (the Identity Toolkit), called by the
dashboard's server so the pages keep carrying no script.

The calls: `accounts:signInWithPassword` (e-mail and password → an ID token),
`accounts:signInWithEmailLink` (an e-mailed one-time sign-in code → an ID token),
`accounts:resetPassword` (an invitation's one-time code and the chosen password), and for
single sign-on `accounts:signInWithIdp` (the practice's provider's ID token → ours, linking
it to the invited person first) with `accounts:signInWithCustomToken` (that person's own
token for the link, minted by firebase-admin). The base URL
is the emulator's on the local stack and `https://identitytoolkit.googleapis.com` in
production; the web API key is not a secret (it names the project to the sign-in endpoints).
Every refusal comes back as one `SignInRefused` with a reason code for the log, never the
password or the code; an outage (no answer, or a 5xx) as `ServiceUnavailable`, so a person is
told to try again rather than that their password was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from upstream.ports import ServiceUnavailable

TIMEOUT_SECONDS = 10
PRODUCTION_BASE = "https://identitytoolkit.googleapis.com"


class SignInRefused(Exception):
    """The sign-in or the invitation was refused; `reason` is Identity Platform's code
    (`INVALID_LOGIN_CREDENTIALS`, `USER_DISABLED`, `EXPIRED_OOB_CODE`, …) for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SignedIn:
    id_token: str
    email: str
    uid: str = ""


def _signed_in(data: dict[str, Any], email: str) -> SignedIn:
    if data.get("mfaPendingCredential"):
        # A second factor is enrolled: this server does not finish that step yet.
        raise SignInRefused("MFA_REQUIRED")
    token = data.get("idToken")
    if not isinstance(token, str) or not token:
        raise SignInRefused("NO_TOKEN")
    return SignedIn(token, str(data.get("email") or email), str(data.get("localId") or ""))


class IdentityToolkit:
    def __init__(self, base_url: str, api_key: str,
                 session: requests.Session | None = None) -> None:
        self._base = base_url.rstrip("/") + "/v1"
        self._key = api_key
        self._http = session or requests.Session()

    @classmethod
    def for_emulator(cls, host: str) -> IdentityToolkit:
        return cls(f"http://{host}/identitytoolkit.googleapis.com", "local-emulator-key")

    def _post(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(f"{self._base}/{method}", params={"key": self._key},
                                       json=body, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise ServiceUnavailable("Identity Platform did not answer") from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 500:
            raise ServiceUnavailable(f"Identity Platform answered {response.status_code}")
        if not response.ok or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            message = str((error or {}).get("message") or f"HTTP_{response.status_code}")
            raise SignInRefused(message.split(" ")[0][:80])
        return data

    def sign_in_with_password(self, email: str, password: str) -> SignedIn:
        return _signed_in(self._post("accounts:signInWithPassword", {
            "email": email, "password": password, "returnSecureToken": True}), email)

    def sign_in_with_email_link(self, email: str, code: str) -> SignedIn:
        """The e-mailed link's one-time code, for the address it was made for."""
        return _signed_in(self._post("accounts:signInWithEmailLink",
                                     {"email": email, "oobCode": code}), email)

    def accept_invitation(self, code: str, password: str) -> str:
        """Set the first password with the invitation's one-time code; the person's e-mail."""
        data = self._post("accounts:resetPassword", {"oobCode": code, "newPassword": password})
        email = data.get("email")
        if not isinstance(email, str) or not email:
            raise SignInRefused("NO_EMAIL")
        return email

    def sign_in_with_idp(self, provider: str, provider_token: str, nonce: str,
                         request_uri: str, link_to: str | None = None) -> SignedIn:
        """The OIDC provider's ID token (already verified by us) → the linked person's ID
        token; with `link_to` (that person's own ID token) the provider identity is linked to
        them first (a provider identity linked elsewhere is FEDERATED_USER_ID_ALREADY_LINKED)."""
        body: dict[str, Any] = {
            "postBody": urlencode({"id_token": provider_token, "providerId": provider,
                                   "nonce": nonce}),
            "requestUri": request_uri, "returnSecureToken": True}
        if link_to:
            body["idToken"] = link_to
        return _signed_in(self._post("accounts:signInWithIdp", body), "")

    def sign_in_with_custom_token(self, token: str) -> SignedIn:
        return _signed_in(self._post("accounts:signInWithCustomToken",
                                     {"token": token, "returnSecureToken": True}), "")
