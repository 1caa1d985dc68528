"""The `ehr_fetcher` use-case: an athenahealth id-only event → the claim fetched from athenaOne
→ claim lines in Firestore → change messages on `claims`; and the patient's authorizations
(`referralauths`) → `authorizations`, so the calendar follows athenaOne without a CSV.

One message per event (the mapper fans a notification out), so a claim that cannot be fetched
now is retried alone: athenaOne busy or down (`AthenaUnavailable`) raises, Pub/Sub redelivers
with backoff and dead-letters after five attempts. Answers that no retry changes end the event
with a status on its `ehr_pending` document instead: the claim is gone (404), the focus names
no claim, or the claim cannot be mapped (each issue with its reason). A `Claim.delete` event
voids the claim's lines; nothing is ever deleted.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from upstream.domain import values as v
from upstream.domain.athena_auths import map_referral_auths
from upstream.domain.athena_map import claim_ref, map_athena_claim
from upstream.domain.webhooks import parse_timestamp
from upstream.events import CloudEventLike, RecordChangeBatch
from upstream.logs import get_logger
from upstream.ports import Publisher, SecretStore, TenantDirectory
from upstream.services.dead_letters import decode_or_dead_letter
from upstream.services.tenants import athena_oauth_secret, tenant_context

log = get_logger(__name__)
_PATH_SAFE_ID = re.compile(r"[A-Za-z0-9]{1,40}")


class AthenaFetch(BaseModel):
    """Published on `ehr-fetch`: one id-only athenahealth event to resolve."""

    model_config = ConfigDict(frozen=True)
    version: Literal[1] = 1
    customer_id: str
    event_id: str
    focus: str | None = None
    topic: str | None = None
    timestamp: str | None = None
    received_at: datetime

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_cloud_event(cls, event: Any) -> AthenaFetch:
        return cls.model_validate_json(base64.b64decode(event.data["message"]["data"]))


class ClaimSource(Protocol):
    """An EHR's claim API (athenaOne today)."""

    def claim(self, practice_id: str, claim_id: str) -> dict[str, Any] | None: ...

    def patient_insurances(self, practice_id: str, patient_id: str) -> list[dict[str, Any]]: ...

    def referral_auths(self, practice_id: str, patient_id: str) -> list[dict[str, Any]]: ...


class FetchedRecordStore(Protocol):
    def upsert_lines(self, customer_id: str, documents: Any) -> list[tuple[str, dict[str, Any]]]:
        ...

    def apply_outcome(self, customer_id: str, claim_id: str, line_key: str,
                      fields: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]: ...

    def upsert_authorizations(self, customer_id: str, documents: Any) -> int: ...

    def mark_event(self, customer_id: str, event_id: str, status: str,
                   detail: dict[str, Any]) -> None: ...


class MissingCredentials(RuntimeError):
    """No athenaOne credentials for the tenant: retried (provisioning may be under way), then
    dead-lettered where an operator sees it."""


@dataclass(frozen=True, slots=True)
class FetcherDeps:
    tenants: TenantDirectory
    secrets: SecretStore
    records: FetchedRecordStore
    publisher: Publisher
    sources: Callable[[str, dict[str, str]], ClaimSource]  # (customer, credentials) → client
    fetch_topic: str
    claims_topic: str


def handle_fetch_event(event: CloudEventLike, deps: FetcherDeps) -> dict[str, Any]:
    request = decode_or_dead_letter(event, AthenaFetch.from_cloud_event, deps.publisher,
                                    deps.fetch_topic, "malformed_fetch_request")
    if request is None:
        return {"status": "dead_lettered"}
    customer = request.customer_id
    tenant = deps.tenants.get(customer)
    if tenant is None:
        raise LookupError(f"tenant {customer} unknown")  # retried, then dead-lettered
    ref = claim_ref(request.focus, request.topic, tenant.get("athena_practice_id"))
    updated_at = parse_timestamp(request.timestamp) or request.received_at
    if ref is None:
        return _finish(deps, request, "not_a_claim", {})
    if ref.deleted:
        voided = deps.records.apply_outcome(customer, ref.claim_id, "*", {
            "outcome": "VOID", "updated_at": updated_at.isoformat()})
        _publish(deps, request, voided)
        return _finish(deps, request, "voided", {"lines": len(voided)})
    source = deps.sources(customer, _credentials(deps.secrets, customer))
    claim = source.claim(ref.practice_id, ref.claim_id)
    if claim is None:
        return _finish(deps, request, "not_found", {})
    patient = _patient_id(claim.get("patientid"))
    # Everything is read before anything is written: athenaOne failing half-way retries the
    # event with nothing stored twice (and the writes are idempotent anyway).
    insurances = source.patient_insurances(ref.practice_id, patient) if patient else []
    referrals = source.referral_auths(ref.practice_id, patient) if patient else []
    ctx = tenant_context(customer, tenant, deps.secrets, request.received_at)
    result = map_athena_claim(claim, insurances, ctx, updated_at)
    authorizations, auth_issues = map_referral_auths(referrals, insurances, patient, ctx,
                                                     updated_at)
    written = deps.records.upsert_lines(customer, [line.to_document() for line in result.lines])
    _publish(deps, request, written)
    granted = deps.records.upsert_authorizations(
        customer, [a.to_document() for a in authorizations]) if authorizations else 0
    status = "fetched" if result.lines else "unmappable"
    return _finish(deps, request, status, {
        "lines": len(result.lines), "written": len(written), "authorizations": granted,
        "issues": [f"{i.reason}: {i.detail}"[:200] for i in result.issues + auth_issues]})


def _patient_id(value: Any) -> str | None:
    """athenaOne's patient id as a path segment: digits (letters allowed), nothing else, so a
    strange claim cannot steer the next request to another path."""
    usable = isinstance(value, int | str) and not isinstance(value, bool)
    text = v.clean(str(value)) if usable else None
    return text if text and _PATH_SAFE_ID.fullmatch(text) else None


def _credentials(secrets: SecretStore, customer: str) -> dict[str, str]:
    raw = secrets.get(athena_oauth_secret(customer))
    try:
        value = json.loads(raw) if raw else None
        credentials = {"client_id": str(value["client_id"]),
                       "client_secret": str(value["client_secret"])} if value else None
    except (ValueError, KeyError, TypeError):
        credentials = None
    if credentials is None:
        raise MissingCredentials(f"no usable {athena_oauth_secret(customer)} secret")
    return credentials


def _publish(deps: FetcherDeps, request: AthenaFetch,
             written: list[tuple[str, dict[str, Any]]]) -> None:
    if not written:
        return
    batch = RecordChangeBatch.of_claims(request.customer_id, f"athena:{request.event_id}",
                                        written)
    deps.publisher.publish(deps.claims_topic, batch.to_bytes(), batch.attributes())


def _finish(deps: FetcherDeps, request: AthenaFetch, status: str,
            detail: dict[str, Any]) -> dict[str, Any]:
    deps.records.mark_event(request.customer_id, request.event_id, status, detail)
    log.info("athena event resolved", extra={"customer_id": request.customer_id,
                                             "status": status, **{k: v for k, v in detail.items()
                                                                  if k != "issues"}})
    return {"status": status, **detail}
