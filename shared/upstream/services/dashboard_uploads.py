"""Uploading in the browser: the page asks for a signed URL, the browser PUTs the file straight
to Cloud Storage under `uploads/<practice>/<kind>/…` with a progress bar, and then follows
the upload's summary until it is complete, with its rejects to download. A file from
`resumable_from` bytes up goes as a resumable session instead: the signed URL starts it, the
page sends 8 MiB chunks, and after a dropped connection asks the session where it stopped and
goes on from there (a few retries with a growing pause) rather than starting again.

The bytes never pass through the `api` function, and what lands is an ordinary bucket object:
the same `file_ingest` path as a bucket drop or `upstream upload`, nothing else. The object
name is ours (the time, a random part, then the file's name cleaned to letters, digits, dots,
dashes and underscores), so a name with `../` or another practice's prefix cannot steer it;
the signature binds the URL to that one name, size limit and expiry.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlsplit

from upstream.adapters.signed_urls import CHUNK_GRANULE, SignedPut
from upstream.domain.records import RecordKind
from upstream.events import content_id
from upstream.services.dashboard_visit import Visit, common
from upstream.services.tenants import CUSTOMER_ID
from upstream.services.web_pages import CSV, Page, download, message, page, redirect

if TYPE_CHECKING:
    from upstream.services.dashboard import DashboardDeps

# The largest file a practice uploads is a year of claims from a 25-provider practice
# (~300k lines, ~60 MB); anything beyond 100 MB is not one of ours.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
URL_MINUTES = 15  # long enough for 100 MB on a slow office line, short enough to be useless
RESUMABLE_FROM_BYTES = 8 * 1024 * 1024
# Each chunk but the last is a multiple of 256 KiB (Cloud Storage's rule); 8 MiB keeps a
# 100 MB file to 13 requests and a lost chunk to seconds of a slow uplink.
CHUNK_BYTES = 8 * 1024 * 1024
REJECTS_LIMIT = 50 * 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_OBJECT = re.compile(rf"^uploads/(?P<customer>{CUSTOMER_ID})/"
                     r"(?P<kind>claims|authorizations|remittance)/[0-9]{8}T[0-9]{6}-[0-9a-f]{8}-"
                     r"[A-Za-z0-9._-]{1,100}$")


class UploadFiles(Protocol):
    def put_url(self, name: str, max_bytes: int, minutes: float,
                resumable: bool = False) -> SignedPut: ...

    def md5_and_size(self, name: str) -> tuple[str, int] | None: ...

    def read(self, name: str, limit: int) -> bytes | None: ...


def safe_file_name(name: str) -> str:
    """The last path part only, cleaned; never empty, never a dot file."""
    last = re.split(r"[\\/]", name or "")[-1]
    cleaned = _SAFE.sub("_", last).strip("._-")[:100]
    return cleaned or "upload"


def object_name(customer: str, kind: str, file_name: str, now: datetime) -> str:
    return (f"uploads/{customer}/{kind}/{now.strftime('%Y%m%dT%H%M%S')}-"
            f"{secrets.token_hex(4)}-{safe_file_name(file_name)}")


def _json(status: int, body: dict[str, object]) -> Page:
    return Page(status, json.dumps(body), {"Content-Type": "application/json",
                                           "Cache-Control": "no-store",
                                           "X-Content-Type-Options": "nosniff"})


def upload_page(visit: Visit, deps: DashboardDeps) -> Page:
    if deps.uploads is None:
        return message(503, "Unavailable", "Uploads from the browser are not set up here.")
    origin = urlsplit(deps.upload_endpoint)
    return page(200, "upload.html", connect=f"{origin.scheme}://{origin.netloc}",
                **common(visit), kinds=[k.value for k in RecordKind],
                max_mb=MAX_UPLOAD_BYTES // (1024 * 1024), back="/upload")


def new_upload(visit: Visit, deps: DashboardDeps) -> Page:
    """The signed PUT for one file (JSON for the page's script)."""
    if deps.uploads is None:
        return _json(503, {"error": "uploads from the browser are not set up here"})
    kind = visit.form.get("kind", "")
    if kind not in {k.value for k in RecordKind}:
        return _json(400, {"error": "choose claims, authorizations or remittance"})
    try:
        size = int(visit.form.get("size", ""))
    except ValueError:
        return _json(400, {"error": "the file's size is missing"})
    if size <= 0:
        return _json(400, {"error": "that file is empty"})
    if size > MAX_UPLOAD_BYTES:
        return _json(400, {"error": f"that file is over {MAX_UPLOAD_BYTES // 2**20} MB"})
    name = object_name(visit.principal.customer_id, kind, visit.form.get("filename", ""),
                       visit.now)
    resumable = size >= deps.resumable_from
    signed = deps.uploads.put_url(name, MAX_UPLOAD_BYTES, URL_MINUTES, resumable)
    # A threshold lowered below one chunk (the Chromium walk) sends chunks no larger than it,
    # still a multiple of 256 KiB.
    chunk = min(CHUNK_BYTES, deps.resumable_from - deps.resumable_from % CHUNK_GRANULE)
    return _json(200, {"url": signed.url, "headers": signed.headers, "object": name,
                       "resumable": resumable, "chunk": chunk,
                       "follow": "/uploads/follow?object=" + quote(name, safe="/")})


def follow(visit: Visit, deps: DashboardDeps) -> Page:
    """From the object the browser just PUT to its upload summary (id = MD5 and size): the
    bucket event reaches file_ingest within seconds, so until the summary exists this page
    waits, refreshing itself."""
    name = visit.request.query.get("object", "")
    match = _OBJECT.match(name)
    customer = visit.principal.customer_id
    if deps.uploads is None or match is None or match["customer"] != customer:
        return message(404, "Not found", "There is no such upload for your practice.")
    found = deps.uploads.md5_and_size(name)
    if found is None:
        return message(404, "Not found", "That file has not arrived; upload it again.")
    upload_id = content_id(*found)
    if deps.stores.upload(customer, upload_id) is not None:
        return redirect(f"/uploads/{upload_id}")
    return page(200, "upload_summary.html", **common(visit), summary=None,
                upload_id=upload_id, refresh=True, back="/upload")


def upload_summary(visit: Visit, deps: DashboardDeps, upload_id: str) -> Page:
    summary = deps.stores.upload(visit.principal.customer_id, upload_id)
    if summary is None:
        return message(404, "Not found", "There is no such upload for your practice.")
    status = str(summary.get("status") or "")
    shown = {"status": status, "message": str(summary.get("message") or ""),
             "error": str(summary.get("error") or ""), "rows": int(summary.get("rows") or 0),
             "accepted": int(summary.get("accepted") or 0),
             "rejected": int(summary.get("rejected") or 0),
             "rejects_object": bool(summary.get("rejects_object"))}
    return page(200, "upload_summary.html", **common(visit), summary=shown,
                upload_id=upload_id, refresh=status in ("processing", "queued", ""),
                reasons=sorted((summary.get("reasons") or {}).items(), key=lambda r: -r[1]),
                back="/upload")


def rejects_file(visit: Visit, deps: DashboardDeps, upload_id: str) -> Page:
    summary = deps.stores.upload(visit.principal.customer_id, upload_id)
    name = str((summary or {}).get("rejects_object") or "")
    if deps.uploads is None or not name.startswith(f"rejects/{visit.principal.customer_id}/"):
        return message(404, "Not found", "That upload has no rejects file.")
    data = deps.uploads.read(name, REJECTS_LIMIT)
    if data is None:
        return message(404, "Not found", "That upload has no rejects file.")
    return download(data.decode("utf-8", "replace"), CSV, f"rejects-{upload_id[:40]}.csv")
