"""The `fhir_mapper` use-case: `ehr-events` → claim lines and outcomes in Firestore → change
messages on `claims` (the same messages file_ingest sends, so aggregates follow).

Full resources (generic EHRs) are mapped here. athenahealth's id-only events need the claim
fetched from its API first: each is kept, visible, in `customers/{id}/ehr_pending` and handed
to the `ehr_fetcher` as one `ehr-fetch` message (so each claim is retried on its own). Every
resource that cannot be used is logged with its reason (never with PHI); the good entries of a
Bundle still land.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from upstream.domain import safe_json
from upstream.domain.fhir_map import map_resource
from upstream.events import CloudEventLike, RecordChangeBatch
from upstream.logs import get_logger
from upstream.ports import Publisher, SecretStore, TenantDirectory
from upstream.services.dead_letters import decode_or_dead_letter
from upstream.services.fetch_ehr_events import AthenaFetch
from upstream.services.tenants import tenant_context
from upstream.services.webhooks import EhrEvent

log = get_logger(__name__)


class EhrRecordStore(Protocol):
    def upsert_lines(self, customer_id: str, documents: Any) -> list[tuple[str, dict[str, Any]]]:
        ...

    def apply_outcome(self, customer_id: str, claim_id: str, line_key: str,
                      fields: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]: ...

    def hold_event(self, customer_id: str, event: dict[str, Any],
                   received_at: datetime) -> None: ...

    def upsert_authorizations(self, customer_id: str,
                              documents: Sequence[dict[str, Any]]) -> int: ...


@dataclass(frozen=True, slots=True)
class MapperDeps:
    tenants: TenantDirectory
    secrets: SecretStore
    records: EhrRecordStore
    publisher: Publisher
    ehr_topic: str
    claims_topic: str
    fetch_topic: str = "ehr-fetch"


def handle_ehr_event(event: CloudEventLike, deps: MapperDeps) -> dict[str, Any]:
    message = decode_or_dead_letter(event, EhrEvent.from_cloud_event, deps.publisher,
                                    deps.ehr_topic, "malformed_ehr_event")
    if message is None:
        return {"status": "dead_lettered"}
    customer = message.customer_id
    if message.source == "athena":
        for item in message.events:
            deps.records.hold_event(customer, item, message.received_at)
            fetch = AthenaFetch(customer_id=customer, event_id=str(item.get("event_id")),
                                focus=item.get("focus"), topic=item.get("topic"),
                                timestamp=item.get("timestamp"),
                                received_at=message.received_at)
            deps.publisher.publish(deps.fetch_topic, fetch.to_bytes(),
                                   {"customer_id": customer})
        return {"status": "sent_to_fetcher", "events": len(message.events)}
    tenant = deps.tenants.get(customer)
    if tenant is None:
        raise LookupError(f"tenant {customer} unknown")  # retried, then dead-lettered
    try:
        resource = safe_json.loads(base64.b64decode(message.resource_b64 or ""))
    except (binascii.Error, safe_json.UnsafeJson):
        resource = None
    ctx = tenant_context(customer, tenant, deps.secrets, message.received_at)
    result = map_resource(resource, ctx)
    written = deps.records.upsert_lines(customer, [line.to_document() for line in result.lines])
    for update in result.outcomes:
        fields = {"outcome": update.outcome.value, "paid_cents": update.paid_cents,
                  "allowed_cents": update.allowed_cents, "carc_codes": list(update.carc_codes),
                  "decided_date": update.decided_date.isoformat() if update.decided_date
                  else None, "updated_at": message.received_at.astimezone(UTC).isoformat()}
        written += deps.records.apply_outcome(customer, update.claim_id, update.line_key,
                                              fields)
    granted = deps.records.upsert_authorizations(
        customer, [a.to_document() for a in result.authorizations]) \
        if result.authorizations else 0
    if written:
        key = str(message.events[0].get("event_id")) if message.events else "ehr"
        batch = RecordChangeBatch.of_claims(customer, f"ehr:{key}", written)
        deps.publisher.publish(deps.claims_topic, batch.to_bytes(), batch.attributes())
    summary = {"status": "mapped", "lines": len(result.lines), "outcomes": len(result.outcomes),
               "written": len(written), "authorizations": granted,
               "issues": [i.reason for i in result.issues],
               "ignored": result.ignored}
    log.info("ehr event mapped", extra={"customer_id": customer, **summary})
    return summary
