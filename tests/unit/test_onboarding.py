"""Adding a practice: generated secrets, the patient-hash key made once, local-only athenaOne
credentials, refusals of bad ids and addresses."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import FakeSecrets
from upstream.services.onboarding import OnboardingError, add_tenant
from upstream.services.tenants import athena_oauth_secret, patient_key_secret, webhook_secret


class Tenants:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def upsert(self, customer_id: str, fields: dict[str, Any]) -> None:
        self.docs.setdefault(customer_id, {}).update(fields)


def _add(secrets: FakeSecrets, tenants: Tenants, local: bool = True,
         **options: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "Acme ABA", "webhook_secret": None,
                            "athena_hub_secret": None, "athena_practice_id": None,
                            "notify_emails": []}
    return add_tenant("acme", **{**base, **options}, secrets=secrets, tenants=tenants,
                      local=local)


def test_secrets_are_generated_once_and_the_patient_key_never_changes() -> None:
    secrets, tenants = FakeSecrets(), Tenants()
    first = _add(secrets, tenants, notify_emails=["billing@acme.test"])
    key = secrets.values[patient_key_secret("acme")]
    assert len(key) == 32 and len(secrets.values[webhook_secret("acme")]) == 64
    assert tenants.docs["acme"]["notifications"]["channels"][0]["recipients"] == [
        "billing@acme.test"]
    again = _add(secrets, tenants)
    assert secrets.values[patient_key_secret("acme")] == key
    assert again["secrets_written"] == [] and first["secrets_written"]
    _add(secrets, tenants, webhook_secret="given")
    assert secrets.values[webhook_secret("acme")] == b"given"


def test_athena_credentials_are_made_up_only_locally() -> None:
    local, remote = FakeSecrets(), FakeSecrets()
    _add(local, Tenants(), athena_practice_id="195900")
    _add(remote, Tenants(), local=False, athena_practice_id="195900")
    assert athena_oauth_secret("acme") in local.values
    assert athena_oauth_secret("acme") not in remote.values


@pytest.mark.parametrize("customer, emails", [("../x", []), ("", []), ("a" * 64, []),
                                              ("acme", ["not an address"])])
def test_bad_ids_and_addresses_change_nothing(customer: str, emails: list[str]) -> None:
    secrets, tenants = FakeSecrets(), Tenants()
    with pytest.raises(OnboardingError):
        add_tenant(customer, name=None, webhook_secret=None, athena_hub_secret=None,
                   athena_practice_id=None, notify_emails=emails, secrets=secrets,
                   tenants=tenants, local=True)
    assert secrets.values == {} and tenants.docs == {}
