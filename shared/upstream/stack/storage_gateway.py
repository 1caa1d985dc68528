"""The local stack's stand-in for what Cloud Storage does with a browser's signed upload, which
gcp-storage-emulator does not: check the V4 signature and its expiry, enforce the signed
length range, and answer the bucket's CORS preflight; and a large file's resumable session
(`stack/resumable.py`), started by a signed POST. What passes is PUT into the emulator,
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
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from google.oauth2 import service_account

from upstream.adapters.signed_urls import LENGTH_HEADER, LOCAL_SIGNING_KEY_NAME, RESUMABLE_HEADER
from upstream.stack.resumable import ResumableSessions

MAX_SIGNED_SECONDS = 7 * 24 * 3600  # Cloud Storage's own ceiling for a V4 URL
# A session without a signed range still stops somewhere (Cloud Storage's object limit is
# 5 TiB; no file of ours is near 1 GiB).
MAX_SESSION_BYTES = 1 << 30
_RANGE = re.compile(r"^0,(\d{1,12})$")
# google-cloud-storage's V4 signing code (imported by name: the package ships no type hints).
_signing: Any = importlib.import_module("google.cloud.storage._signing")


class Gateway:
    def __init__(self, storage_url: str, endpoint: str, origin: str,
                 key_info: dict[str, Any]) -> None:
        self.storage_url, self.endpoint, self.origin = storage_url.rstrip("/"), endpoint, origin
        self.credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            key_info)
        self.sessions = ResumableSessions(self.store_file)

    def store(self, path: str, content_type: str, body: bytes | BinaryIO) -> bool:
        answer = requests.put(f"{self.storage_url}{path}", data=body, timeout=120,
                              headers={"Content-Type": content_type})
        return bool(answer.ok)

    def store_file(self, path: str, content_type: str, file: Path) -> bool:
        with file.open("rb") as held:  # streamed, not read whole into memory
            return self.store(path, content_type, held)

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
        resumable = method == "POST" and headers.get(RESUMABLE_HEADER) == "start"
        again = _signing.generate_signed_url_v4(
            self.credentials, unquote(path), expiration=timedelta(seconds=expires),
            api_access_endpoint=self.endpoint, method="RESUMABLE" if resumable else method,
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
            self.send_header("Access-Control-Expose-Headers", "Location, Range")
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
        self.send_header("Access-Control-Allow-Methods", "PUT, POST")
        self.send_header("Access-Control-Allow-Headers",
                         f"content-type, {LENGTH_HEADER}, {RESUMABLE_HEADER}, content-range")
        self.send_header("Access-Control-Max-Age", "3600")
        self.end_headers()

    def _request(self) -> tuple[str, dict[str, str], dict[str, str], int]:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            length = -1
        return parts.path, query, headers, length

    def do_POST(self) -> None:
        """Starts a resumable session: the signed POST, empty, says which object it is."""
        path, query, headers, length = self._request()
        if length != 0 or headers.get(RESUMABLE_HEADER) != "start":
            self._answer(400, "only an empty x-goog-resumable: start POST is taken")
            return
        why = self.gateway.refusal("POST", path, query, headers, 0, datetime.now(UTC))
        if why is not None:
            self._answer(403, why)
            return
        limit = _RANGE.match(headers.get(LENGTH_HEADER, ""))
        session = self.gateway.sessions.start(
            path, headers.get("content-type", "application/octet-stream"),
            int(limit.group(1)) if limit else MAX_SESSION_BYTES)
        self.send_response(201)
        self._cors()
        self.send_header("Location", f"{self.gateway.endpoint}{path}?upload_id={session}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        path, query, headers, length = self._request()
        if length < 0 or length > MAX_SESSION_BYTES:
            self._answer(411, "a length (at most 1 GiB) is required")
            return
        if "upload_id" in query:
            self._chunk(path, query["upload_id"], headers, length)
            return
        why = self.gateway.refusal("PUT", path, query, headers, length, datetime.now(UTC))
        if why is not None:
            self._answer(403, why)
            return
        stored = self.gateway.store(path, headers.get("content-type", "application/octet-stream"),
                                    self.rfile.read(length))
        self._answer(200 if stored else 502)

    def _chunk(self, path: str, session: str, headers: dict[str, str], length: int) -> None:
        if self.gateway.sessions.name_of(session) != path:
            self._answer(404, "no such upload session for this object")
            return
        answer = self.gateway.sessions.put(session, headers.get("content-range", ""),
                                           self.rfile.read(length))
        self.send_response(answer.status)
        self._cors()
        if answer.status == 308 and answer.received:
            self.send_header("Range", f"bytes=0-{answer.received - 1}")
        body = answer.reason.encode()
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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
