"""Adding a practice: its tenant document and its secrets with generated values, the same code
for the local stack and a real project (`upstream tenant add [--project P]`).

The patient-hash key is made once and never replaced (a new key would split every patient's
history in two); a webhook secret is made when missing or given. athenaOne API credentials are
made up only on the local stack, whose fake athenaOne accepts exactly those; in production
they are the practice's own, put in Secret Manager by the operator.
"""

from __future__ import annotations

import json
import re
import secrets as pysecrets
from typing import Any, Protocol

from pydantic import ValidationError

from upstream.domain.notify.routing import NotificationSettings
from upstream.ports import SecretStore
from upstream.services.tenants import (
    CUSTOMER_ID,
    athena_oauth_secret,
    athena_secret,
    patient_key_secret,
    webhook_secret,
)

_CUSTOMER = re.compile(f"^{CUSTOMER_ID}$")


class OnboardingError(ValueError):
    pass


class SecretWriter(SecretStore, Protocol):
    def put(self, name: str, value: bytes) -> None: ...


class TenantWriter(Protocol):
    def upsert(self, customer_id: str, fields: dict[str, Any]) -> None: ...


def add_tenant(customer_id: str, *, name: str | None, webhook_secret: str | None,
               athena_hub_secret: str | None, athena_practice_id: str | None,
               notify_emails: list[str], secrets: SecretWriter, tenants: TenantWriter,
               local: bool) -> dict[str, Any]:
    if not _CUSTOMER.match(customer_id):
        raise OnboardingError("customer ids are 1-63 letters, digits, '-' or '_'")
    fields: dict[str, Any] = {"name": name or customer_id}
    if notify_emails:
        try:
            fields["notifications"] = NotificationSettings.model_validate({"channels": [
                {"id": "billing", "kind": "email", "recipients": notify_emails,
                 "min_severity": "HIGH"}]}).model_dump(mode="json")
        except ValidationError as exc:
            raise OnboardingError(f"--notify-email: {exc.errors()[0]['msg']}") from None
    if athena_practice_id:
        fields["athena_practice_id"] = athena_practice_id
    made = []
    if secrets.get(patient_key_secret(customer_id)) is None:
        secrets.put(patient_key_secret(customer_id), pysecrets.token_bytes(32))
        made.append(patient_key_secret(customer_id))
    if webhook_secret or secrets.get(_webhook(customer_id)) is None:
        secrets.put(_webhook(customer_id), (webhook_secret or pysecrets.token_hex(32)).encode())
        made.append(_webhook(customer_id))
    if athena_hub_secret:
        secrets.put(athena_secret(customer_id), athena_hub_secret.encode())
        made.append(athena_secret(customer_id))
    if local and (athena_hub_secret or athena_practice_id) and secrets.get(
            athena_oauth_secret(customer_id)) is None:
        secrets.put(athena_oauth_secret(customer_id), json.dumps(
            {"client_id": f"local-{customer_id}",
             "client_secret": pysecrets.token_urlsafe(24)}).encode())
        made.append(athena_oauth_secret(customer_id))
    tenants.upsert(customer_id, fields)
    return {"customer_id": customer_id, "status": "active", "secrets_written": made}


def _webhook(customer_id: str) -> str:
    return webhook_secret(customer_id)
