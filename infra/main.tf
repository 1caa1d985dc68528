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
  topics = ["claims", "ehr-events", "alerts", "detector-runs"]
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
