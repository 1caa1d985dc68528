"""Sending: SMTP (STARTTLS), Slack incoming webhooks, signed HTTP webhooks.

Each send either returns or raises `DeliveryFailed`, which says whether a retry can help (a
refused connection, a 429 or 5xx, a timeout) or not (a 4xx, a refused recipient), so the
dispatcher retries only what may succeed and records the rest with its reason.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import requests

TIMEOUT_SECONDS = 10.0  # connect + each read: a target that hangs costs at most this


class DeliveryFailed(RuntimeError):
    def __init__(self, reason: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.retry_after = reason, retryable, retry_after


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = True


class SmtpSender:
    def __init__(self, settings: SmtpSettings, timeout: float = TIMEOUT_SECONDS) -> None:
        self._settings, self._timeout = settings, timeout

    @property
    def sender(self) -> str:
        return self._settings.sender

    def send(self, message: EmailMessage) -> None:
        s = self._settings
        try:
            with smtplib.SMTP(s.host, s.port, timeout=self._timeout) as smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"recipients refused ({len(exc.recipients)})", False) from None
        except smtplib.SMTPAuthenticationError:
            raise DeliveryFailed("SMTP authentication failed", False) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP {exc.smtp_code}", exc.smtp_code >= 400
                                 and exc.smtp_code < 500) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryFailed("the server offers no STARTTLS", False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP unreachable ({type(exc).__name__})", True) from None
        if refused:
            raise DeliveryFailed(f"{len(refused)} recipients refused", False)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


class HttpSender:
    """Slack incoming webhooks and tenants' own webhooks: a POST that must answer 2xx."""

    def __init__(self, session: requests.Session | None = None,
                 timeout: float = TIMEOUT_SECONDS) -> None:
        self._session = session or requests.Session()
        self._timeout = timeout

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            response = self._session.post(url, data=body, headers=headers,
                                          timeout=(self._timeout, self._timeout),
                                          allow_redirects=False)
        except requests.Timeout:
            raise DeliveryFailed("timed out", True) from None
        except requests.RequestException as exc:
            raise DeliveryFailed(f"unreachable ({type(exc).__name__})", True) from None
        if 200 <= response.status_code < 300:
            return
        retryable = response.status_code == 429 or response.status_code >= 500
        raise DeliveryFailed(f"HTTP {response.status_code}", retryable, _retry_after(response))

    def post_json(self, url: str, payload: dict[str, Any]) -> None:
        self.post(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
