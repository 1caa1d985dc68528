"""Monthly cost of one 20-provider practice on Upstream, from request and document counts.

Counts come from what the code does per claim line and per run (comments say where); prices
are Google Cloud list prices for us-central1 / nam5 as published in 2025 (Cloud Run
functions, Firestore, Pub/Sub, Secret Manager, Cloud Scheduler pricing pages) and are
constants below, to be checked against the pricing pages before quoting. Free tiers are left
out on purpose: they are per billing account and shared by every tenant.

Run: python infra/tools/cost_estimate.py
"""

from __future__ import annotations

# --- the practice ---------------------------------------------------------------------------
PROVIDERS = 20
LINES_PER_PROVIDER_DAY = 3.0  # ABA sessions billed per provider and working day
WORKING_DAYS = 21
PAYERS = 10
EHR_EVENTS_PER_LINE = 2.0  # athenahealth Claim.create + Claim.update per claim line

# --- list prices (USD) ------------------------------------------------------------------------
FIRESTORE_READ = 0.06 / 100_000  # nam5 multi-region
FIRESTORE_WRITE = 0.18 / 100_000
FIRESTORE_GIB_MONTH = 0.18
RUN_REQUEST = 0.40 / 1_000_000
RUN_VCPU_SECOND = 0.000024  # request-based billing
RUN_GIB_SECOND = 0.0000025
RUN_IDLE_VCPU_SECOND = 0.0000025  # a min instance between requests
PUBSUB_TIB = 40.0
SECRET_VERSION_MONTH = 0.06
SECRET_ACCESS = 0.03 / 10_000
SCHEDULER_JOB_MONTH = 0.10
SECONDS_PER_MONTH = 30 * 24 * 3600


SHARED = ("Webhooks kept warm", "Cloud Scheduler")  # paid once, whatever the tenants


def estimate() -> list[tuple[str, str, float]]:
    lines = PROVIDERS * LINES_PER_PROVIDER_DAY * WORKING_DAYS
    events = lines * EHR_EVENTS_PER_LINE
    # Per line: the claim document, its aggregate ledger entry and aggregate cells (file_ingest,
    # aggregator); its 835 posting rewrites it once more. Per event: idempotency key,
    # ehr_pending create + resolve, version-guarded upsert (1 read, 1 write).
    writes = lines * 4 + events * 4
    reads = lines * 3 + events * 2
    # Detector runs: 30 daily + 4 weekly, each reading 13 weeks of daily cells per payer, plus
    # authorizations and the lines of alerts' evidence (~200).
    reads += 34 * (91 * PAYERS + 200)
    storage_gib = lines * 12 * 2.5 / 1024**2  # a year of lines at ~2.5 KiB with indexes
    requests = events + lines / 500 + events + events + lines / 150 + 34
    busy_vcpu_s = events * 0.02 + lines * 0.01 + 34 * 5
    idle_vcpu_s = 2 * SECONDS_PER_MONTH  # two webhooks at min_instance_count = 1
    items = [
        ("Firestore", f"{reads:,.0f} reads, {writes:,.0f} writes, {storage_gib:.2f} GiB",
         reads * FIRESTORE_READ + writes * FIRESTORE_WRITE + storage_gib * FIRESTORE_GIB_MONTH),
        ("Cloud Run functions (requests, busy CPU)",
         f"{requests:,.0f} requests, {busy_vcpu_s:,.0f} vCPU-s",
         requests * RUN_REQUEST + busy_vcpu_s * (RUN_VCPU_SECOND + 0.5 * RUN_GIB_SECOND)),
        ("Webhooks kept warm (2 × min 1 instance)", f"{idle_vcpu_s:,.0f} idle vCPU-s",
         idle_vcpu_s * (RUN_IDLE_VCPU_SECOND + 0.5 * RUN_GIB_SECOND)),
        ("Pub/Sub", f"{(events * 3 + lines) * 2 / 1024:.1f} MiB (2 KiB messages)",
         (events * 3 + lines) * 2 / 1024**3 * PUBSUB_TIB),
        ("Secret Manager", "4 secrets, ~9,000 accesses",
         4 * SECRET_VERSION_MONTH + 9_000 * SECRET_ACCESS),
        ("Cloud Scheduler", "2 jobs (shared by all tenants)", 2 * SCHEDULER_JOB_MONTH),
    ]
    return items


def main() -> None:
    items = estimate()
    lines = PROVIDERS * LINES_PER_PROVIDER_DAY * WORKING_DAYS
    print(f"{PROVIDERS} providers, {lines:,.0f} claim lines and "
          f"{lines * EHR_EVENTS_PER_LINE:,.0f} EHR events a month, {PAYERS} payers")
    print("| item | volume | USD/month |\n|---|---|---|")
    for name, volume, cost in items:
        print(f"| {name} | {volume} | {cost:.2f} |")
    shared = sum(c for name, _, c in items if name.startswith(SHARED))
    own = sum(c for name, _, c in items if not name.startswith(SHARED))
    print(f"| **total, one practice alone** | | **{shared + own:.2f}** |")
    print(f"\nShared by every practice on the deployment: {shared:.2f}; "
          f"each practice adds {own:.2f}.")


if __name__ == "__main__":
    main()
