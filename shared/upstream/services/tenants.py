"""Per-tenant context for ingestion: the patient-hash key and payer aliases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from upstream.domain.ingest import TenantContext
from upstream.domain.patient import PatientHasher
from upstream.domain.payers import PayerNormalizer
from upstream.ports import SecretStore

# A practice's id: what a secret name, a document path and an upload prefix can all hold.
CUSTOMER_ID = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"


def patient_key_secret(customer_id: str) -> str:
    return f"patient-hash-key-{customer_id}"


def webhook_secret(customer_id: str) -> str:
    return f"webhook-secret-{customer_id}"


def athena_secret(customer_id: str) -> str:
    return f"athena-hub-secret-{customer_id}"


def athena_oauth_secret(customer_id: str) -> str:
    """JSON `{"client_id", "client_secret"}`: the practice's athenaOne API credentials."""
    return f"athena-oauth-{customer_id}"


def sso_client_secret(customer_id: str) -> str:
    """The client secret of the practice's single sign-on provider (the settings page sets
    it; the api function reads it to exchange a sign-in's code)."""
    return f"sso-client-secret-{customer_id}"


def slack_webhooks_secret(customer_id: str) -> str:
    """JSON `{channel id: Slack incoming-webhook URL}` (the URL is the credential)."""
    return f"slack-webhooks-{customer_id}"


def outbound_webhook_secret(customer_id: str) -> str:
    """Signs the alerts we POST to the tenant's own webhook channels."""
    return f"outbound-webhook-secret-{customer_id}"


class MissingTenantSecret(RuntimeError):
    """A known tenant without its patient-hash key: a provisioning fault worth a retry,
    never a reason to store an unhashed or differently-hashed patient id."""


def tenant_context(customer_id: str, tenant: dict[str, Any], secrets: SecretStore,
                   now: datetime) -> TenantContext:
    key = secrets.get(patient_key_secret(customer_id))
    if key is None:
        raise MissingTenantSecret(f"no patient-hash key for tenant {customer_id}")
    return TenantContext(
        customer_id=customer_id,
        hash_patient=PatientHasher(key),
        payers=PayerNormalizer(tenant.get("payer_aliases") or {}),
        now=now,
    )
