"""Firestore repositories. Layout (DESIGN "Firestore"): everything a tenant owns lives under
`customers/{customer_id}/…`; nothing here queries across tenants."""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from upstream.adapters.firestore_encoding import set_write
from upstream.domain.records import RecordKind, authorization_doc_id
from upstream.ports import UploadBusy, UploadClaim, UploadStatus

CUSTOMERS = "customers"
UPLOADS = "uploads"
BATCHES = "batches"
IN_LIMIT = 30  # values in one Firestore `in` filter
# Denied lines read for one alert's evidence: the largest 25 are shown, the total counted up
# to this bound (a spike of thousands is described by its aggregates, not by reading it all).
DENIED_LINES_LIMIT = 2000


def tenant_collection(client: firestore.Client, customer_id: str,
                      name: str) -> firestore.CollectionReference:
    return client.collection(CUSTOMERS, customer_id, name)


class FirestoreTenants:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def get(self, customer_id: str) -> dict[str, Any] | None:
        snap = self._client.collection(CUSTOMERS).document(customer_id).get()
        return snap.to_dict() if snap.exists else None

    def upsert(self, customer_id: str, fields: dict[str, Any]) -> None:
        self._client.collection(CUSTOMERS).document(customer_id).set(
            {"customer_id": customer_id, "status": "active", **fields}, merge=True)

    def list_ids(self) -> list[str]:
        return [doc.id for doc in self._client.collection(CUSTOMERS).list_documents()]


class CachedTenants:
    """Tenant documents kept for `ttl` seconds: the webhooks look the tenant up on every
    request. A disabled tenant is refused within `ttl` seconds."""

    def __init__(self, inner: FirestoreTenants, ttl: float = 60.0) -> None:
        self._inner, self._ttl = inner, ttl
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def get(self, customer_id: str) -> dict[str, Any] | None:
        now = time.monotonic()
        held = self._cache.get(customer_id)
        if held and now - held[0] < self._ttl:
            return held[1]
        tenant = self._inner.get(customer_id)
        self._cache[customer_id] = (now, tenant)
        return tenant


class FirestoreUploads:
    """Upload summaries, batch markers and the records themselves."""

    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _upload(self, customer_id: str, upload_id: str) -> firestore.DocumentReference:
        return tenant_collection(self._client, customer_id, UPLOADS).document(upload_id)

    def begin_upload(self, customer_id: str, upload_id: str, meta: dict[str, Any],
                     owner: str, now: datetime, lease_seconds: int) -> UploadClaim:
        ref = self._upload(customer_id, upload_id)
        lease_until = now + timedelta(seconds=lease_seconds)

        @firestore.transactional
        def claim(transaction: firestore.Transaction) -> UploadClaim:
            snap = ref.get(transaction=transaction)
            if not snap.exists:
                transaction.set(ref, {**meta, "upload_id": upload_id, "customer_id": customer_id,
                                      "status": UploadStatus.PROCESSING.value,
                                      "started_at": now, "lease_owner": owner,
                                      "lease_until": lease_until, "attempts": 1})
                return UploadClaim(started_at=now)
            data = snap.to_dict() or {}
            if data.get("status") != UploadStatus.PROCESSING.value:
                return UploadClaim(started_at=data["started_at"], finished=_plain(data))
            if data["lease_until"] > now:
                raise UploadBusy(f"upload {upload_id} is being ingested by another delivery")
            transaction.update(ref, {"lease_owner": owner, "lease_until": lease_until,
                                     "attempts": firestore.Increment(1)})
            return UploadClaim(started_at=data["started_at"])

        result: UploadClaim = claim(self._client.transaction())
        if result.finished is None and result.started_at != now:
            done = ref.collection(BATCHES).where(
                filter=firestore.FieldFilter("published", "==", True)).select([]).stream()
            result.published_batches = {int(doc.id) for doc in done}
        return result

    def write_batch(self, customer_id: str, upload_id: str, kind: RecordKind, batch: int,
                    documents: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Records and the batch marker in one atomic commit (≤ 500 writes). Records go through
        the fast encoder (see `firestore_encoding`); `_add_write_pbs` is how `WriteBatch.set`
        itself adds them."""
        write = self._client.batch()
        prefix = tenant_collection(self._client, customer_id, kind.value).document("_")
        prefix_path = prefix._document_path.removesuffix("_")
        write._add_write_pbs([set_write(prefix_path + doc_id, {**document, "upload_id": upload_id})
                              for doc_id, document in documents])
        marker = self._upload(customer_id, upload_id).collection(BATCHES).document(str(batch))
        write.set(marker, {"records": len(documents), "published": False})
        write.commit()

    def mark_published(self, customer_id: str, upload_id: str, batch: int) -> None:
        self._upload(customer_id, upload_id).collection(BATCHES).document(str(batch)).update(
            {"published": True})

    def finish_upload(self, customer_id: str, upload_id: str, summary: dict[str, Any]) -> None:
        self._upload(customer_id, upload_id).set(
            {**summary, "lease_owner": None, "lease_until": None}, merge=True)

    def note_duplicate(self, customer_id: str, upload_id: str, object_name: str) -> None:
        self._upload(customer_id, upload_id).update(
            {"duplicate_objects": firestore.ArrayUnion([object_name])})

    def lines_of_claims(self, customer_id: str, claim_ids: Sequence[str],
                        ) -> dict[str, builtins.list[tuple[str, dict[str, Any]]]]:
        """Every stored line of these claims, by claim id (`in` takes 30 values a query)."""
        claims = tenant_collection(self._client, customer_id, RecordKind.CLAIMS.value)
        found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        unique = sorted(set(claim_ids))
        for start in range(0, len(unique), IN_LIMIT):
            query = claims.where(filter=firestore.FieldFilter(
                "claim_id", "in", unique[start:start + IN_LIMIT]))
            for snap in query.stream():
                document = snap.to_dict() or {}
                found.setdefault(document["claim_id"], []).append((snap.id, document))
        return found

    def get_upload(self, customer_id: str, upload_id: str) -> dict[str, Any] | None:
        snap = self._upload(customer_id, upload_id).get()
        return _plain(snap.to_dict()) if snap.exists else None

    def processing(self, customer_id: str) -> list[dict[str, Any]]:
        """One equality filter (no composite index); the age is judged by the caller."""
        query = tenant_collection(self._client, customer_id, UPLOADS).where(
            filter=firestore.FieldFilter("status", "==", UploadStatus.PROCESSING.value))
        return [{"upload_id": doc.id, **(doc.to_dict() or {})} for doc in query.stream()]

    def list_uploads(self, customer_id: str, limit: int = 50) -> list[dict[str, Any]]:
        query = tenant_collection(self._client, customer_id, UPLOADS).order_by(
            "started_at", direction=firestore.Query.DESCENDING).limit(limit)
        return [_plain(doc.to_dict()) for doc in query.stream()]


# A practice of 25 providers serves ~200k lines a year; the weekly run reads the last year.
SPECIALTY_LINES_LIMIT = 250_000
SPECIALTY_FIELDS = ["claim_id", "line", "patient_key", "payer", "plan_type", "cpt", "modifiers",
                    "units", "minutes", "diagnosis_codes", "service_date", "submitted_date",
                    "decided_date", "outcome", "billed_cents", "allowed_cents", "paid_cents",
                    "authorization_number", "provider_npi", "provider_credential"]


class FirestoreRecords:
    """Read access to a tenant's stored claim lines and authorizations."""

    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def list(self, customer_id: str, kind: RecordKind, *, payer: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
        query: Any = tenant_collection(self._client, customer_id, kind.value)
        if payer:
            query = query.where(filter=firestore.FieldFilter("payer", "==", payer))
        return [doc.to_dict() for doc in query.limit(limit).stream()]

    def authorizations(self, customer_id: str) -> builtins.list[dict[str, Any]]:
        return [doc.to_dict() or {} for doc in
                tenant_collection(self._client, customer_id, "authorizations").stream()]

    def lines_for_authorizations(self, customer_id: str, numbers: Sequence[str],
                                 patient_keys: Sequence[str]) -> builtins.list[dict[str, Any]]:
        """Claim lines carrying one of the numbers, plus lines of the patients (for lines
        without a number), only the fields the calendar needs; `in` takes 30 values a query."""
        claims = tenant_collection(self._client, customer_id, RecordKind.CLAIMS.value)
        fields = ["authorization_number", "patient_key", "payer", "cpt", "service_date",
                  "units", "billed_cents", "outcome"]
        found: dict[str, dict[str, Any]] = {}
        for field, values in (("authorization_number", numbers), ("patient_key", patient_keys)):
            for start in range(0, len(values), IN_LIMIT):
                query = claims.where(filter=firestore.FieldFilter(
                    field, "in", list(values[start:start + IN_LIMIT]))).select(fields)
                for snap in query.stream():
                    found[snap.id] = snap.to_dict() or {}
        return list(found.values())

    def denied_lines(self, customer_id: str, payer: str, first: str,
                     end: str) -> builtins.list[dict[str, Any]]:
        """A payer's denied lines decided in [first, end): evidence for an alert. Uses the
        composite index (payer, outcome, decided_date) declared in infra/."""
        query = tenant_collection(self._client, customer_id, RecordKind.CLAIMS.value).where(
            filter=firestore.FieldFilter("payer", "==", payer)).where(
            filter=firestore.FieldFilter("outcome", "==", "DENIED")).where(
            filter=firestore.FieldFilter("decided_date", ">=", first)).where(
            filter=firestore.FieldFilter("decided_date", "<", end)).limit(DENIED_LINES_LIMIT)
        return [snap.to_dict() or {} for snap in query.stream()]

    def lines_since(self, customer_id: str, since: str,
                    limit: int = SPECIALTY_LINES_LIMIT) -> builtins.list[dict[str, Any]]:
        """Claim lines served on or after `since` (ISO day), only the fields the specialty
        checks and the risk model's training read: a single-field range, no composite index."""
        query = tenant_collection(self._client, customer_id, RecordKind.CLAIMS.value).where(
            filter=firestore.FieldFilter("service_date", ">=", since)).select(
            SPECIALTY_FIELDS).limit(limit)
        return [snap.to_dict() or {} for snap in query.stream()]

    def set_authorization_status(self, customer_id: str, number: str, status: str) -> None:
        # When it was marked: "renewed before it lapsed" on the home page compares it with
        # the authorization's end date. An ISO string like every date of the document (the
        # API returns authorizations as stored, and JSON has no timestamp type).
        tenant_collection(self._client, customer_id, "authorizations").document(
            authorization_doc_id(number)).update({
                "status": status, "status_set_at": datetime.now(UTC).isoformat()})

    def count(self, customer_id: str, kind: RecordKind) -> int:
        result = tenant_collection(self._client, customer_id, kind.value).count().get()  # type: ignore[no-untyped-call]
        return int(result[0][0].value)


def _plain(data: dict[str, Any] | None) -> dict[str, Any]:
    """Firestore timestamps → ISO strings (at any depth), so documents serialise as JSON."""
    return {k: _plain_value(v) for k, v in (data or {}).items()}


def _plain_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    return value


plain = _plain
