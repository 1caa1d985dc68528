# Least privilege, function by function. Topic publishing is in pubsub.tf, secret access in
# secrets.tf; here: Firestore, the uploads bucket, and who may invoke each function.

# Firestore grants only at project level (no per-collection IAM); every function reads or
# writes it (tenants, records, idempotency keys, aggregates, alerts). datastore.user is the
# narrowest role that reads and writes documents, without index or database administration.
resource "google_project_iam_member" "firestore" {
  for_each = local.functions
  project  = var.project
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

# file_ingest reads uploads and writes (and on a retry overwrites) rejects files: objectUser
# on the uploads bucket only; no other function touches Storage.
resource "google_storage_bucket_iam_member" "uploads" {
  for_each = { for name, f in local.functions : name => f if f.bucket }
  bucket   = google_storage_bucket.uploads.name
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

# The dashboard's browser uploads: the api function signs V4 PUT URLs as itself through IAM
# signBlob (no key file exists), so it may sign for itself, create objects (what the signed
# URL grants; names are unique, so no overwrite) and read them (an upload's MD5 and size,
# the rejects file a person downloads).
resource "google_service_account_iam_member" "api_signs_upload_urls" {
  service_account_id = google_service_account.function["api"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.function["api"].email}"
}

resource "google_storage_bucket_iam_member" "api_uploads" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])
  bucket   = google_storage_bucket.uploads.name
  role     = each.value
  member   = "serviceAccount:${google_service_account.function["api"].email}"
}

# --- invocation ----------------------------------------------------------------------------

# Pub/Sub pushes as `pusher`, which may invoke the topic-triggered functions only.
resource "google_cloud_run_service_iam_member" "pusher_invokes" {
  for_each = local.topic_functions
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}

# The Eventarc trigger of file_ingest: receives storage events and invokes file_ingest.
resource "google_service_account" "eventarc" {
  account_id   = "${var.environment}-eventarc-uploads"
  display_name = "Eventarc: uploads bucket to file_ingest (${var.environment})"
}

resource "google_project_iam_member" "eventarc_receiver" {
  project = var.project
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.eventarc.email}"
}

resource "google_cloud_run_service_iam_member" "eventarc_invokes_file_ingest" {
  location = var.region
  service  = google_cloudfunctions2_function.function["file_ingest"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.eventarc.email}"
}

# Cloud Storage's service agent publishes the bucket's events to Eventarc's Pub/Sub transport.
resource "google_project_iam_member" "storage_agent_publishes" {
  project = var.project
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:service-${data.google_project.this.number}@gs-project-accounts.iam.gserviceaccount.com"
}

# The webhooks are called by athenahealth and other EHRs, which hold no Google identity, and
# the api by practices' tools and browsers: they are public, and authenticate every request
# themselves before anything else (HMAC, Contract 3; API keys, services/api.py).
resource "google_cloud_run_service_iam_member" "public_webhooks" {
  #checkov:skip=CKV_GCP_102:webhooks and the api are called from outside Google; every request is HMAC- or API-key-verified first
  for_each = toset(local.http_functions)
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Who read or wrote an upload (PHI) or a secret (patient-hash keys, webhook secrets): Cloud
# Audit Logs data-access entries, in place of the bucket's legacy usage logs.
resource "google_project_iam_audit_config" "data_access" {
  for_each = toset(["storage.googleapis.com", "secretmanager.googleapis.com"])
  project  = var.project
  service  = each.value
  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
