terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.30"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

locals {
  # Same list as shared/upstream/stack/topology.py: every topic has a dead-letter twin.
  topics = ["claims", "ehr-events", "ehr-fetch", "alerts", "detector-runs"]
}

resource "google_pubsub_topic" "topic" {
  for_each = toset(local.topics)
  name     = each.value
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = toset(local.topics)
  name     = "${each.value}-dlq"
  # Dead letters are evidence of lost work: keep them for the maximum a topic allows.
  message_retention_duration = "604800s"
}

resource "google_storage_bucket" "uploads" {
  name                        = "${var.project}-uploads"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
}

resource "google_service_account" "file_ingest" {
  account_id   = "fn-file-ingest"
  display_name = "file_ingest Cloud Function"
}

# Reads uploads and writes rejects files next to them.
resource "google_storage_bucket_iam_member" "file_ingest_objects" {
  bucket = google_storage_bucket.uploads.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.file_ingest.email}"
}

# Writes claim lines, authorizations and upload summaries.
resource "google_project_iam_member" "file_ingest_firestore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.file_ingest.email}"
}

# Publishes claim-change batches.
resource "google_pubsub_topic_iam_member" "file_ingest_claims" {
  topic  = google_pubsub_topic.topic["claims"].name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.file_ingest.email}"
}

# Idempotency keys expire 24 h (8 days for athenahealth events) after their expire_at.
resource "google_firestore_field" "idempotency_ttl" {
  collection = "idempotency"
  field      = "expire_at"
  ttl_config {}
}

# --- detection (issue 3): aggregator on `claims`, detectors on `detector-runs` ---------------

resource "google_service_account" "aggregator" {
  account_id   = "fn-aggregator"
  display_name = "aggregator Cloud Function"
}

# Reads and writes customers/*/aggregate_ledger and customers/*/aggregates.
resource "google_project_iam_member" "aggregator_firestore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.aggregator.email}"
}

# Dead-letters malformed change batches itself (with the reason).
resource "google_pubsub_topic_iam_member" "aggregator_claims_dlq" {
  topic  = google_pubsub_topic.dead_letter["claims"].name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.aggregator.email}"
}

resource "google_service_account" "detectors" {
  account_id   = "fn-detectors"
  display_name = "detectors Cloud Function"
}

# Reads aggregates, authorizations and linked claim lines; writes alerts, run records and the
# anonymised network signals.
resource "google_project_iam_member" "detectors_firestore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.detectors.email}"
}

# Publishes alerts, the per-tenant fan-out of a scheduled run, and dead letters.
resource "google_pubsub_topic_iam_member" "detectors_publish" {
  for_each = {
    alerts   = google_pubsub_topic.topic["alerts"].name
    runs     = google_pubsub_topic.topic["detector-runs"].name
    runs_dlq = google_pubsub_topic.dead_letter["detector-runs"].name
  }
  topic  = each.value
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.detectors.email}"
}

# The key that makes network signals unattributable; its value is set out of band
# (`gcloud secrets versions add network-signal-key --data-file=-`), never in state.
resource "google_secret_manager_secret" "network_signal_key" {
  secret_id = "network-signal-key"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_iam_member" "detectors_network_key" {
  secret_id = google_secret_manager_secret.network_signal_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.detectors.email}"
}

resource "google_service_account" "scheduler" {
  account_id   = "scheduler-detector-runs"
  display_name = "Cloud Scheduler publisher of detector runs"
}

resource "google_pubsub_topic_iam_member" "scheduler_runs" {
  topic  = google_pubsub_topic.topic["detector-runs"].name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.scheduler.email}"
}

# Daily at 06:00 UTC (the authorization calendar, the sequential drift test); weekly on
# Mondays at 06:30 (the weekly tests, and the daily ones again: runs are idempotent).
# `customer = "*"` fans out one message per tenant.
resource "google_cloud_scheduler_job" "detector_runs" {
  for_each = {
    daily  = "0 6 * * *"
    weekly = "30 6 * * 1"
  }
  name      = "detector-runs-${each.key}"
  schedule  = each.value
  time_zone = "Etc/UTC"
  pubsub_target {
    topic_name = google_pubsub_topic.topic["detector-runs"].id
    data       = base64encode(jsonencode({ run = each.key, customer = "*" }))
  }
}

# The evidence query of a denial alert: a payer's denied lines decided in the alert's window.
resource "google_firestore_index" "claims_denied_by_payer" {
  collection = "claims"
  fields {
    field_path = "payer"
    order      = "ASCENDING"
  }
  fields {
    field_path = "outcome"
    order      = "ASCENDING"
  }
  fields {
    field_path = "decided_date"
    order      = "ASCENDING"
  }
}
