"""What every dashboard page shares: the request and answer shapes, the strict headers, forms,
cookies and on-site redirects. The pages themselves live in `dashboard` (signed-in work) and
`dashboard_signin` (sign-in, invitations)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any, Literal
from urllib.parse import parse_qs

from upstream.web import render

# The largest form is a pasted claim (64 KB of text, up to three times that URL-encoded).
MAX_FORM = 256 * 1024
CSV = "text/csv; charset=utf-8"
PDF = "application/pdf"
# The settings page's notification form: ten fields per channel, up to 20 channels, a new row.
MAX_FIELDS = 250


@dataclass(frozen=True, slots=True)
class WebRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    secure: bool  # HTTPS: cookies get `Secure`
    client_ip: str | None = None  # the peer (X-Forwarded-For wins in the audit)


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    html: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # a binary answer (a PDF) instead of `html`
    # What a change touched, for the access audit when the path does not say it (a form
    # naming the person): recorded instead of the route template on success.
    audit_resource: str | None = None


def download(content: str | bytes, content_type: str, filename: str) -> Page:
    """A file to save (CSV, PDF): never cached, never sniffed, named for the person's disk."""
    headers = {"Content-Type": content_type, "Cache-Control": "no-store",
               "Content-Disposition": f'attachment; filename="{filename}"',
               "X-Content-Type-Options": "nosniff"}
    if isinstance(content, bytes):
        return Page(200, "", headers, body=content)
    return Page(200, content, headers)


def strict_headers(nonce: str, connect: str | None = None) -> dict[str, str]:
    """No script at all, unless a page must talk to one other origin itself (the upload page
    PUTs to Cloud Storage): then its one nonce'd script, and only that origin besides ours."""
    script = f" script-src 'nonce-{nonce}'; connect-src 'self' {connect};" if connect else ""
    return {"Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'nonce-{nonce}';{script} img-src data:; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def page(status: int, template: str, extra: dict[str, str] | None = None,
         connect: str | None = None, **context: Any) -> Page:
    nonce = secrets.token_urlsafe(12)
    return Page(status, render(template, nonce=nonce, **context),
                {**strict_headers(nonce, connect), **(extra or {})})


def message(status: int, heading: str, text: str) -> Page:
    return page(status, "message.html", heading=heading, message=text)


def redirect(location: str, extra: dict[str, str] | None = None) -> Page:
    return Page(303, "", {"Location": location, "Cache-Control": "no-store", **(extra or {})})


def safe_next(value: str | None) -> str:
    """Only a path on this site: never `//evil.example` or a scheme (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) \
            or any(c in value for c in "\r\n\t") or len(value) > 300:
        return "/"
    return value


def form(body: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=MAX_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items() if v}


def cookie(headers: Mapping[str, str], name: str) -> str | None:
    raw = next((v for k, v in headers.items() if k.lower() == "cookie"), "")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def set_cookie(name: str, value: str, secure: bool, max_age: int,
               same_site: Literal["Strict", "Lax"] = "Strict") -> str:
    flags = f"Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}"
    return f"{name}={value}; {flags}{'; Secure' if secure else ''}"
