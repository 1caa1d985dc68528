"""V4 signed URLs for the browser's upload: a PUT of one object name, one content type, at
most `max_bytes` (the signed `x-goog-content-length-range` header), for a few minutes; or,
for a large file, the same bound on the `POST` that starts a resumable upload session
(`x-goog-resumable: start`, signed too), whose chunks then go to the session's URI.

google-cloud-storage builds the URL; what signs it differs:
- production: the function's own service account through the IAM `signBlob` API (no key
  file anywhere; the account needs `iam.serviceAccountTokenCreator` on itself);
- the local stack: a throwaway RSA key the stack generates into its secrets file, which the
  stack's upload gateway (`stack/storage_gateway.py`) verifies the way Cloud Storage does.

The signature covers the method, the bucket and object path, the content type, the length
range and the expiry: a URL cannot be replayed for another object, another practice's
prefix, a bigger file, or after it expired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]
from google.oauth2 import service_account

CONTENT_TYPE = "application/octet-stream"  # the ingest reads the bytes, never this header
LENGTH_HEADER = "x-goog-content-length-range"
# In the local stack's secrets file only, never in Secret Manager (production signs via IAM).
LOCAL_SIGNING_KEY_NAME = "upload-signing-key"
LOCAL_SIGNER_EMAIL = "upload-signer@upstream-local.iam.gserviceaccount.com"


@dataclass(frozen=True, slots=True)
class SignedPut:
    url: str
    headers: dict[str, str]  # what the browser must send, exactly
    expires_at: datetime


RESUMABLE_HEADER = "x-goog-resumable"
# Cloud Storage takes a resumable session's chunks in multiples of this, all but the last.
CHUNK_GRANULE = 256 * 1024


def _headers(max_bytes: int, resumable: bool = False) -> dict[str, str]:
    headers = {"Content-Type": CONTENT_TYPE, LENGTH_HEADER: f"0,{max_bytes}"}
    return {**headers, RESUMABLE_HEADER: "start"} if resumable else headers


def _method(resumable: bool) -> str:
    """google-cloud-storage signs "RESUMABLE" as a POST carrying `x-goog-resumable: start`."""
    return "RESUMABLE" if resumable else "PUT"


class LocalKeySigner:
    """Signs with a key from the local secret store (service-account JSON)."""

    def __init__(self, key_info: dict[str, Any], bucket: str, endpoint: str) -> None:
        self._credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            key_info)
        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
        self._bucket = storage.Client(project="local", credentials=anonymous).bucket(bucket)
        self._endpoint = endpoint

    def put_url(self, name: str, max_bytes: int, minutes: float,
                resumable: bool = False) -> SignedPut:
        url = self._bucket.blob(name).generate_signed_url(
            version="v4", method=_method(resumable), expiration=timedelta(minutes=minutes),
            content_type=CONTENT_TYPE, headers={LENGTH_HEADER: f"0,{max_bytes}"},
            credentials=self._credentials, api_access_endpoint=self._endpoint)
        return SignedPut(url, _headers(max_bytes, resumable),
                         datetime.now(UTC) + timedelta(minutes=minutes))


class IamSigner:
    """Signs as the running function's service account, through IAM (production)."""

    def __init__(self, client: storage.Client, bucket: str) -> None:
        self._bucket = client.bucket(bucket)

    def put_url(self, name: str, max_bytes: int, minutes: float,
                resumable: bool = False) -> SignedPut:
        import google.auth
        from google.auth.transport.requests import Request

        credentials, _ = google.auth.default()
        credentials.refresh(Request())  # type: ignore[no-untyped-call]
        url = self._bucket.blob(name).generate_signed_url(
            version="v4", method=_method(resumable), expiration=timedelta(minutes=minutes),
            content_type=CONTENT_TYPE, headers={LENGTH_HEADER: f"0,{max_bytes}"},
            service_account_email=getattr(credentials, "service_account_email", None),
            access_token=credentials.token)
        return SignedPut(url, _headers(max_bytes, resumable),
                         datetime.now(UTC) + timedelta(minutes=minutes))


def new_local_key() -> bytes:
    """A service-account-shaped key for the local stack's signer (never used in production)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": "upstream-local",
                       "private_key_id": "local", "private_key": pem,
                       "client_email": LOCAL_SIGNER_EMAIL, "client_id": "0",
                       "token_uri": "https://oauth2.googleapis.com/token"}).encode()


class BrowserUploads:
    """What the dashboard's upload pages need from Cloud Storage: a signed PUT, an object's
    MD5 and size (its upload id), and a rejects file to hand back."""

    def __init__(self, client: storage.Client, bucket: str,
                 signer: LocalKeySigner | IamSigner) -> None:
        self._bucket = client.bucket(bucket)
        self._signer = signer

    def put_url(self, name: str, max_bytes: int, minutes: float,
                resumable: bool = False) -> SignedPut:
        return self._signer.put_url(name, max_bytes, minutes, resumable)

    def md5_and_size(self, name: str) -> tuple[str, int] | None:
        import base64

        blob = self._bucket.get_blob(name)
        if blob is None or not blob.md5_hash or blob.size is None:
            return None
        return base64.b64decode(blob.md5_hash).hex(), int(blob.size)

    def read(self, name: str, limit: int) -> bytes | None:
        blob = self._bucket.get_blob(name)
        if blob is None or (blob.size or 0) > limit:
            return None
        return bytes(blob.download_as_bytes())
