"""The local stack's stand-in for what Cloud Storage does with a browser's signed upload, which
gcp-storage-emulator does not: check the V4 signature and its expiry, enforce the signed
length range, and answer the bucket's CORS preflight. What passes is PUT into the emulator,
where the bridge finds it like any bucket drop (then file_ingest, nothing else).

The signature is checked by signing the same request again with the stack's key (the
`upload-signing-key` secret) through google-cloud-storage's own V4 code, at the request's own
timestamp, and comparing in constant time: the canonical request is then byte for byte the
one Cloud Storage would build. Production never runs this; its bucket's CORS is in
`infra/storage.tf`.
"""

from __future__ import annotations

import argparse
import hmac
import importlib
import json
import re
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from google.oauth2 import service_account

from upstream.adapters.signed_urls import LENGTH_HEADER, LOCAL_SIGNING_KEY_NAME

MAX_SIGNED_SECONDS = 7 * 24 * 3600  # Cloud Storage's own ceiling for a V4 URL
_RANGE = re.compile(r"^0,(\d{1,12})$")
# google-cloud-storage's V4 signing code (imported by name: the package ships no type hints).
_signing: Any = importlib.import_module("google.cloud.storage._signing")


class Gateway:
    def __init__(self, storage_url: str, endpoint: str, origin: str,
                 key_info: dict[str, Any]) -> None:
        self.storage_url, self.endpoint, self.origin = storage_url.rstrip("/"), endpoint, origin
        self.credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            key_info)

    def refusal(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                length: int, now: datetime) -> str | None:
        """Why Cloud Storage would refuse this request, or None."""
        try:
            signed_at = datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=UTC)
            expires = int(query["X-Goog-Expires"])
        except (KeyError, ValueError):
            return "not a V4 signed request"
        if query.get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256" \
                or not 0 < expires <= MAX_SIGNED_SECONDS:
            return "not a V4 signed request"
        if now > signed_at + timedelta(seconds=expires):
            return "the signed URL has expired"
        extra = {LENGTH_HEADER: headers[LENGTH_HEADER]} if LENGTH_HEADER in headers else None
        again = _signing.generate_signed_url_v4(
            self.credentials, unquote(path), expiration=timedelta(seconds=expires),
            api_access_endpoint=self.endpoint, method=method,
            content_type=headers.get("content-type"), headers=extra,
            _request_timestamp=query["X-Goog-Date"])
        expected = parse_qs(urlsplit(again).query).get("X-Goog-Signature", [""])[0]
        if not hmac.compare_digest(expected.encode(),
                                   query.get("X-Goog-Signature", "").encode()):
            return "the signature does not match this request"
        limit = _RANGE.match(headers.get(LENGTH_HEADER, ""))
        if limit and length > int(limit.group(1)):
            return "the file is larger than the signed length range"
        return None


class _Handler(BaseHTTPRequestHandler):
    gateway: Gateway

    def _cors(self) -> None:
        if self.headers.get("Origin") == self.gateway.origin:
            self.send_header("Access-Control-Allow-Origin", self.gateway.origin)
            self.send_header("Vary", "Origin")

    def _answer(self, status: int, text: str = "") -> None:
        body = text.encode()
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "PUT")
        self.send_header("Access-Control-Allow-Headers", f"content-type, {LENGTH_HEADER}")
        self.send_header("Access-Control-Max-Age", "3600")
        self.end_headers()

    def do_PUT(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self._answer(411, "a length is required")
            return
        why = self.gateway.refusal("PUT", parts.path, query, headers, length,
                                   datetime.now(UTC))
        if why is not None:
            self._answer(403, why)
            return
        body = self.rfile.read(length)
        answer = requests.put(f"{self.gateway.storage_url}{parts.path}", data=body, timeout=60,
                              headers={"Content-Type": headers.get("content-type",
                                                                   "application/octet-stream")})
        self._answer(200 if answer.ok else 502)

    def log_message(self, format: str, *args: Any) -> None:
        return  # no request lines (they hold signatures) in the stack's logs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--storage-url", required=True)
    parser.add_argument("--origin", required=True, help="the dashboard's origin (CORS)")
    parser.add_argument("--secrets-file", required=True)
    args = parser.parse_args()
    from pathlib import Path

    from upstream.adapters.secrets import LocalFileSecretStore

    raw = LocalFileSecretStore(Path(args.secrets_file)).get(LOCAL_SIGNING_KEY_NAME)
    if raw is None:
        raise SystemExit(f"no {LOCAL_SIGNING_KEY_NAME} in {args.secrets_file}")
    key_info = json.loads(raw)
    _Handler.gateway = Gateway(args.storage_url, f"http://{args.host}:{args.port}", args.origin,
                               key_info)
    ThreadingHTTPServer((args.host, args.port), _Handler).serve_forever()


if __name__ == "__main__":
    main()
