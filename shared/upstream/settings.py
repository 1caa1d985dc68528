"""Runtime settings: one frozen model, read once per cold start from the environment.

Terraform sets every value in production; the local stack sets them for its functions.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UPSTREAM_", frozen=True)

    project: str = Field("upstream-local",
                         validation_alias=AliasChoices("UPSTREAM_PROJECT", "GOOGLE_CLOUD_PROJECT"))
    claims_topic: str = "claims"
    alerts_topic: str = "alerts"
    ehr_topic: str = "ehr-events"
    detector_runs_topic: str = "detector-runs"
    ehr_fetch_topic: str = "ehr-fetch"
    # Links in alert messages point here (`/alerts/<id>`): the dashboard the `api` function
    # serves; on the local stack, the api function's port.
    dashboard_url: str = "http://127.0.0.1:8698"
    # athenaOne's API; production is https://api.platform.athenahealth.com (preview:
    # https://api.preview.platform.athenahealth.com), the local stack points at its fake.
    athena_base_url: str = "https://api.platform.athenahealth.com"
    # Identity Platform's sign-in endpoints and the project's web API key (not a secret: it
    # names the project to the sign-in endpoints; Terraform passes it). The local stack uses
    # the Auth emulator instead (FIREBASE_AUTH_EMULATOR_HOST).
    identity_base_url: str = "https://identitytoolkit.googleapis.com"
    identity_api_key: str = ""
    # The roles that sign in with an authenticator code after the password or e-mailed link,
    # where a practice has not chosen its own (settings page). Production: owners and admins
    # (they change people and settings). The local stack sets none, so people made with
    # `--password` sign in with the password alone (tests, the demo).
    mfa_roles: str = "owner,admin"
    # Browser uploads (the dashboard): V4 signed PUT URLs into this bucket, signed through
    # IAM in production; the local stack signs with its own key and points at its gateway.
    uploads_bucket: str = "upstream-uploads"
    upload_endpoint: str = "https://storage.googleapis.com"
    upload_signer: Literal["iam", "local"] = "iam"
    # From this size the page sends a file as a resumable session in chunks (a dropped
    # connection costs one chunk, not the file); below it, one signed PUT (one round trip).
    # 8 MiB is Cloud Storage's own advice for when resumable pays, and a few minutes of an
    # office's uplink; the Chromium walk lowers it to prove the chunked path on a small file.
    upload_resumable_from_bytes: int = Field(8 * 1024 * 1024, ge=256 * 1024)
    secrets_backend: Literal["local", "gcp"] = "local"
    secrets_file: Path = Path(".upstream/secrets.json")
    # Firestore commits at most 500 writes; one slot is the batch's progress marker.
    ingest_batch_size: int = Field(499, ge=1, le=499)
    # Batches committed concurrently: the emulator and Firestore both take parallel batches
    # far faster than one after another (DESIGN: 10 batches of 500 in ~1.4 s).
    ingest_parallel_batches: int = Field(4, ge=1, le=32)
    # How long one delivery owns an upload before another may take over: the function's
    # timeout (540 s, the 2nd-gen event maximum) so a live run is never doubled.
    ingest_lease_seconds: int = 540


def mfa_roles(settings: Settings) -> tuple[str, ...]:
    return tuple(r.strip() for r in settings.mfa_roles.split(",") if r.strip())


@cache
def get_settings() -> Settings:
    return Settings()
