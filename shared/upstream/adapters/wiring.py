"""Builds use-case dependencies from settings: the one place adapters are chosen."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from upstream.adapters.clients import firestore_client, publisher_client, storage_client
from upstream.adapters.firestore_aggregates import FirestoreAggregates
from upstream.adapters.firestore_reconcile import FirestoreReconcile
from upstream.adapters.firestore_store import (
    CachedTenants,
    FirestoreRecords,
    FirestoreTenants,
    FirestoreUploads,
)
from upstream.adapters.gcs import GcsObjectStore
from upstream.adapters.pubsub import PubSubPublisher
from upstream.adapters.pubsub_dead_letters import PubSubDeadLetters
from upstream.adapters.secrets import LocalFileSecretStore, SecretManagerStore
from upstream.logs import get_logger
from upstream.ports import SecretStore
from upstream.services.ingest_upload import IngestDeps

if TYPE_CHECKING:  # the detection stack (scipy, statsmodels) loads only where it runs
    from upstream.adapters.channels import SmtpSender
    from upstream.adapters.identity import FirebaseIdentity
    from upstream.adapters.identity_toolkit import IdentityToolkit
    from upstream.adapters.signed_urls import BrowserUploads
    from upstream.adapters.weekly_sources import FirestoreWeeklySources
    from upstream.services.aggregate_changes import AggregateDeps
    from upstream.services.api import ApiDeps
    from upstream.services.automation import AutomationDeps
    from upstream.services.dashboard import DashboardDeps
    from upstream.services.delivery import DispatchDeps
    from upstream.services.detector_runs import DetectorDeps
    from upstream.services.fetch_ehr_events import FetcherDeps
    from upstream.services.map_ehr_events import MapperDeps
    from upstream.services.people import PeopleDeps
    from upstream.services.score_claims import RiskDeps
    from upstream.services.second_factor_sign_in import SecondFactorDeps
    from upstream.services.sso_sign_in import SsoDeps
    from upstream.services.webhooks import WebhookDeps
from upstream.settings import get_settings, mfa_roles

log = get_logger(__name__)


@cache
def secret_store() -> SecretStore:
    settings = get_settings()
    if settings.secrets_backend == "gcp":
        from google.cloud import secretmanager

        return SecretManagerStore(secretmanager.SecretManagerServiceClient(), settings.project)
    return LocalFileSecretStore(settings.secrets_file)


@cache
def ingest_deps() -> IngestDeps:
    settings = get_settings()
    return IngestDeps(
        tenants=FirestoreTenants(firestore_client()),
        uploads=FirestoreUploads(firestore_client()),
        objects=GcsObjectStore(storage_client()),
        publisher=PubSubPublisher(publisher_client(), settings.project),
        secrets=secret_store(),
        claims_topic=settings.claims_topic,
        aggregates=FirestoreAggregates(firestore_client()),
        batch_size=settings.ingest_batch_size,
        parallel_batches=settings.ingest_parallel_batches,
        lease_seconds=settings.ingest_lease_seconds,
    )


@cache
def aggregate_deps() -> AggregateDeps:
    from upstream.services.aggregate_changes import AggregateDeps

    settings = get_settings()
    return AggregateDeps(aggregates=FirestoreAggregates(firestore_client()),
                         publisher=PubSubPublisher(publisher_client(), settings.project),
                         claims_topic=settings.claims_topic)


@cache
def detector_deps() -> DetectorDeps:
    from upstream.adapters.firestore_alerts import FirestoreAlerts
    from upstream.adapters.firestore_network import FirestoreNetwork
    from upstream.adapters.firestore_payer_reports import FirestorePayerReports
    from upstream.services.detector_runs import DetectorDeps

    settings = get_settings()
    return DetectorDeps(
        tenants=FirestoreTenants(firestore_client()),
        aggregates=FirestoreAggregates(firestore_client()),
        alerts=FirestoreAlerts(firestore_client()),
        publisher=PubSubPublisher(publisher_client(), settings.project),
        runs_topic=settings.detector_runs_topic,
        alerts_topic=settings.alerts_topic,
        authorizations=FirestoreRecords(firestore_client()),
        network=FirestoreNetwork(firestore_client()),
        network_key=network_key,
        automation=automation_deps(),
        tenants_store=FirestoreTenants(firestore_client()),
        reconciler=reconcile_store(),
        uploads=FirestoreUploads(firestore_client()),
        payer_reports=FirestorePayerReports(firestore_client()),
    )


@cache
def reconcile_store() -> FirestoreReconcile:
    return FirestoreReconcile(firestore_client())


@cache
def dead_letter_hold() -> PubSubDeadLetters:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    return PubSubDeadLetters(pubsub_v1.SubscriberClient(), publisher_client(),
                             get_settings().project)


NETWORK_KEY_SECRET = "network-signal-key"
SESSION_KEY_SECRET = "dashboard-session-key"
TOTP_KEY_SECRET = "totp-seed-key"


def _platform_key(name: str) -> bytes | None:
    """A key of the platform's own (not a tenant's). Locally it is created on first use; in
    production Terraform declares the secret and an operator sets its value."""
    store = secret_store()
    key = store.get(name)
    if key is None and get_settings().secrets_backend == "local":
        store.put(name, os.urandom(32))
        key = store.get(name)
    return key


def network_key() -> bytes | None:
    """The key that makes tenant tokens unattributable; until it is set the network detector
    is off and says so."""
    key = _platform_key(NETWORK_KEY_SECRET)
    if key is None:
        log.warning("network detector off: secret missing", extra={"secret": NETWORK_KEY_SECRET})
    return key


def _required_key(name: str) -> bytes:
    """A platform key without which a page must not work: missing in production is a
    deployment error, answered 500, never replaced by something guessable."""
    key = _platform_key(name)
    if key is None or len(key) < 32:
        raise RuntimeError(f"secret {name} is missing or shorter than 32 bytes")
    return key


def session_key() -> bytes:
    """Signs dashboard session cookies and the sign-in steps' sealed values."""
    return _required_key(SESSION_KEY_SECRET)


@cache
def webhook_deps() -> WebhookDeps:
    from upstream.adapters.firestore_idempotency import FirestoreIdempotency
    from upstream.services.webhooks import WebhookDeps

    settings = get_settings()
    return WebhookDeps(
        tenants=CachedTenants(FirestoreTenants(firestore_client())), secrets=secret_store(),
        idempotency=FirestoreIdempotency(firestore_client()),
        publisher=PubSubPublisher(publisher_client(), settings.project),
        ehr_topic=settings.ehr_topic)


@cache
def mapper_deps() -> MapperDeps:
    from upstream.adapters.firestore_ehr import FirestoreEhrRecords
    from upstream.services.map_ehr_events import MapperDeps

    settings = get_settings()
    return MapperDeps(
        tenants=FirestoreTenants(firestore_client()), secrets=secret_store(),
        records=FirestoreEhrRecords(firestore_client()),
        publisher=PubSubPublisher(publisher_client(), settings.project),
        ehr_topic=settings.ehr_topic, claims_topic=settings.claims_topic,
        fetch_topic=settings.ehr_fetch_topic)


@cache
def fetcher_deps() -> FetcherDeps:
    from upstream.adapters.athena_api import AthenaClient, AthenaCredentials
    from upstream.adapters.firestore_ehr import FirestoreEhrRecords
    from upstream.services.fetch_ehr_events import FetcherDeps

    settings = get_settings()
    clients: dict[tuple[str, str, str], AthenaClient] = {}
    lock = threading.Lock()

    def source(customer: str, credentials: dict[str, str]) -> AthenaClient:
        """One client per tenant and credentials: its token is reused across invocations of
        a warm instance; rotated credentials get a new client (and token)."""
        key = (customer, credentials["client_id"], credentials["client_secret"])
        with lock:
            if key not in clients:
                clients[key] = AthenaClient(settings.athena_base_url, AthenaCredentials(
                    credentials["client_id"], credentials["client_secret"]))
            return clients[key]

    return FetcherDeps(
        tenants=FirestoreTenants(firestore_client()), secrets=secret_store(),
        records=FirestoreEhrRecords(firestore_client()),
        publisher=PubSubPublisher(publisher_client(), settings.project),
        sources=source, fetch_topic=settings.ehr_fetch_topic,
        claims_topic=settings.claims_topic)


SMTP_SECRET = "smtp-credentials"


def smtp_sender() -> SmtpSender | None:
    """JSON `{"host", "port", "sender", "username", "password", "starttls"}` in Secret Manager
    (locally: the stack's SMTP server). Read on each use: a fixed credential is picked up
    without a redeploy."""
    from upstream.adapters.channels import SmtpSender, SmtpSettings

    raw = secret_store().get(SMTP_SECRET)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return SmtpSender(SmtpSettings(
            host=str(data["host"]), port=int(data.get("port", 587)), sender=str(data["sender"]),
            username=data.get("username"), password=data.get("password"),
            starttls=bool(data.get("starttls", True))))
    except (ValueError, KeyError, TypeError):
        log.error("smtp-credentials secret is not usable JSON")
        return None


@cache
def dispatch_deps() -> DispatchDeps:
    from upstream.adapters.channels import HttpSender
    from upstream.adapters.firestore_deliveries import FirestoreDeliveries
    from upstream.adapters.weekly_sources import FirestoreWeeklySources
    from upstream.services.delivery import DispatchDeps

    settings = get_settings()
    return DispatchDeps(
        tenants=FirestoreTenants(firestore_client()),
        tenant_ids=FirestoreTenants(firestore_client()), secrets=secret_store(),
        deliveries=FirestoreDeliveries(firestore_client()),
        publisher=PubSubPublisher(publisher_client(), settings.project), smtp=smtp_sender,
        http=HttpSender(), alerts_topic=settings.alerts_topic,
        dashboard_url=settings.dashboard_url,
        weekly=FirestoreWeeklySources(firestore_client()),
        monthly=FirestoreWeeklySources(firestore_client()), pdf=_pdf_renderer())


@cache
def api_deps() -> ApiDeps:
    from upstream.adapters.firestore_api import FirestoreApiStores
    from upstream.services.api import ApiDeps

    return ApiDeps(stores=FirestoreApiStores(firestore_client()), automation=automation_deps(),
                   dead_letters=dead_letter_hold(), identity=identity(),
                   mfa_roles=mfa_roles(get_settings()))


@cache
def dashboard_deps() -> DashboardDeps:
    from upstream.adapters.firestore_api import FirestoreApiStores
    from upstream.services.dashboard import DashboardDeps

    return DashboardDeps(stores=FirestoreApiStores(firestore_client()), session_key=session_key,
                         automation=automation_deps(), identity=identity(),
                         sign_in=identity_toolkit, test_channel=channel_tester(),
                         uploads=browser_uploads(), pdf=_pdf_renderer(),
                         monthly=_monthly_sources(), people=people_deps,
                         link_window=sign_in_link_window, sso=sso_deps,
                         secrets=secret_store(), second_factor=second_factor_deps,
                         mfa_roles=mfa_roles(get_settings()),
                         upload_endpoint=get_settings().upload_endpoint,
                         resumable_from=get_settings().upload_resumable_from_bytes)


# One e-mailed sign-in link per address per ten minutes: enough for a person who lost the
# first, too few to flood an inbox from the sign-in form.
SIGN_IN_LINK_WINDOW_SECONDS = 600


def sign_in_link_window(email: str) -> bool:
    """True for the first request in this address's current window (an idempotency key
    `signin-link|<address>|<window>`, held until the window ends)."""
    from datetime import UTC, datetime, timedelta

    from upstream.adapters.firestore_idempotency import FirestoreIdempotency

    now = datetime.now(UTC)
    window = int(now.timestamp()) // SIGN_IN_LINK_WINDOW_SECONDS
    return FirestoreIdempotency(firestore_client()).claim(
        f"signin-link|{email}|{window}", now + timedelta(seconds=SIGN_IN_LINK_WINDOW_SECONDS),
        now)


def _monthly_sources() -> FirestoreWeeklySources:
    from upstream.adapters.weekly_sources import FirestoreWeeklySources

    return FirestoreWeeklySources(firestore_client())


def _pdf_renderer() -> Callable[[str], bytes]:
    from upstream.adapters.pdf import html_to_pdf

    return html_to_pdf


def browser_uploads() -> BrowserUploads:
    from upstream.adapters.signed_urls import (
        LOCAL_SIGNING_KEY_NAME,
        BrowserUploads,
        IamSigner,
        LocalKeySigner,
    )

    settings = get_settings()
    signer: LocalKeySigner | IamSigner
    if settings.upload_signer == "local":
        raw = secret_store().get(LOCAL_SIGNING_KEY_NAME)
        if raw is None:
            raise RuntimeError(f"the local stack's {LOCAL_SIGNING_KEY_NAME} secret is missing")
        signer = LocalKeySigner(json.loads(raw), settings.uploads_bucket,
                                settings.upload_endpoint)
    else:
        signer = IamSigner(storage_client(), settings.uploads_bucket)
    return BrowserUploads(storage_client(), settings.uploads_bucket, signer)


def channel_tester() -> Callable[[str, str, str], None]:
    """The settings page's "Send a test": a request on the `alerts` topic, for the
    dispatcher, which alone holds the channels' credentials."""
    import uuid

    from upstream.services.channel_test import request_body

    settings = get_settings()
    publisher = PubSubPublisher(publisher_client(), settings.project)

    def send(customer: str, channel: str, by: str) -> None:
        publisher.publish(settings.alerts_topic,
                          request_body(customer, channel, uuid.uuid4().hex, by),
                          {"customer_id": customer, "kind": "channel_test"})

    return send


@cache
def identity() -> FirebaseIdentity:
    from upstream.adapters.identity import FirebaseIdentity

    return FirebaseIdentity(get_settings().project)


def identity_toolkit() -> IdentityToolkit:
    from upstream.adapters.identity_toolkit import IdentityToolkit

    emulator = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    if emulator:
        return IdentityToolkit.for_emulator(emulator)
    settings = get_settings()
    return IdentityToolkit(settings.identity_base_url, settings.identity_api_key)


def totp_seed_key() -> bytes:
    """Derives each person's authenticator secret (second_factor.py)."""
    return _required_key(TOTP_KEY_SECRET)


def _first_use() -> Callable[[str, datetime], bool]:
    """True the first time a key is claimed before its expiry (Firestore idempotency)."""
    from upstream.adapters.firestore_idempotency import FirestoreIdempotency

    once = FirestoreIdempotency(firestore_client())
    return lambda key, expires: once.claim(key, expires, datetime.now(UTC))


@cache
def second_factor_deps() -> SecondFactorDeps:
    from upstream.adapters.firestore_second_factor import FirestoreSecondFactors
    from upstream.services.second_factor_sign_in import SecondFactorDeps

    return SecondFactorDeps(factors=FirestoreSecondFactors(firestore_client()),
                            seed_key=totp_seed_key, minter=identity(),
                            toolkit=identity_toolkit(), first_use=_first_use())


@cache
def sso_deps() -> SsoDeps:
    """Single sign-on: the practice's provider over HTTP (its discovery and keys cached in
    this process), Identity Platform, and each state used once (Firestore idempotency)."""
    from upstream.adapters.oidc_provider import OidcProvider
    from upstream.services.sso_sign_in import SsoDeps
    from upstream.services.tenants import sso_client_secret

    # Uncached: a practice that turns single sign-on off is off at the next sign-in.
    tenants = FirestoreTenants(firestore_client())
    return SsoDeps(provider=OidcProvider(), people=identity(), toolkit=identity_toolkit(),
                   tenant=tenants.get,
                   client_secret=lambda customer: (secret_store().get(
                       sso_client_secret(customer)) or b"").decode("utf-8", "replace"),
                   first_use=_first_use(), dashboard_url=get_settings().dashboard_url)


def people_deps() -> PeopleDeps:
    from upstream.adapters.firestore_audit import FirestoreAudit
    from upstream.adapters.firestore_second_factor import FirestoreSecondFactors
    from upstream.services.people import PeopleDeps

    return PeopleDeps(identity=identity(), tenants=FirestoreTenants(firestore_client()),
                      audit=FirestoreAudit(firestore_client()), mailer=smtp_sender,
                      dashboard_url=get_settings().dashboard_url,
                      authenticators=FirestoreSecondFactors(firestore_client()))


@cache
def risk_deps() -> RiskDeps:
    from upstream.adapters.firestore_alerts import FirestoreAlerts
    from upstream.adapters.firestore_risk import FirestoreRiskScores
    from upstream.services.score_claims import RiskDeps

    settings = get_settings()
    return RiskDeps(
        tenants=FirestoreTenants(firestore_client()),
        aggregates=FirestoreAggregates(firestore_client()),
        authorizations=FirestoreRecords(firestore_client()),
        scores=FirestoreRiskScores(firestore_client()),
        alerts=FirestoreAlerts(firestore_client()),
        publisher=PubSubPublisher(publisher_client(), settings.project),
        claims_topic=settings.claims_topic,
        alerts_topic=settings.alerts_topic,
        automation=automation_deps(),
    )


@cache
def automation_deps() -> AutomationDeps:
    from upstream.adapters.firestore_alerts import FirestoreAlerts
    from upstream.adapters.firestore_automation import FirestoreAutomation
    from upstream.services.automation import AutomationDeps

    settings = get_settings()
    return AutomationDeps(tenants=FirestoreTenants(firestore_client()),
                          store=FirestoreAutomation(firestore_client()),
                          alerts=FirestoreAlerts(firestore_client()),
                          publisher=PubSubPublisher(publisher_client(), settings.project),
                          alerts_topic=settings.alerts_topic)
