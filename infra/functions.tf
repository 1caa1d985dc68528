# Every function, its trigger, sizing, environment, service account and what it may touch.
# Kept in step with the code by tests/unit/test_infra_consistency.py.

locals {
  common_env = {
    UPSTREAM_PROJECT         = var.project
    UPSTREAM_SECRETS_BACKEND = "gcp"
    LOG_EXECUTION_ID         = "true"
  }

  # trigger: "http" (public: the webhooks check an HMAC, the api an API key), "storage" (object finalized in the
  # uploads bucket, via Eventarc) or "topic:<name>" (our own push subscription with a
  # dead-letter topic; see pubsub.tf for why not Eventarc's).
  # publishes: topics the function publishes to (its dead letters included).
  # secrets: per-tenant secret prefixes (`<prefix>-<customer>`) and global secrets it reads.
  functions = {
    file_ingest = {
      trigger     = "storage"
      memory      = "1Gi"
      cpu         = "1"
      timeout     = 540 # the lease an upload is held for (settings.ingest_lease_seconds)
      min         = 0
      max         = 10
      concurrency = 1 # one upload per instance: memory stays flat on 100k-line files
      env         = {}
      publishes   = ["claims"]
      secrets     = ["patient-hash-key"]
      bucket      = true
    }
    aggregator = {
      trigger     = "topic:claims"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 120
      min         = 0
      max         = 10
      concurrency = 4
      env         = {}
      publishes   = ["claims-dlq"]
      secrets     = []
      bucket      = false
    }
    detectors = {
      trigger     = "topic:detector-runs"
      memory      = "2Gi"
      cpu         = "1"
      timeout     = 540
      min         = 0
      max         = 5
      concurrency = 1 # scipy/statsmodels work is CPU-bound
      env         = {}
      publishes   = ["alerts", "detector-runs", "detector-runs-dlq"]
      secrets     = ["network-signal-key"]
      bucket      = false
    }
    athena_webhook = {
      trigger     = "http"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 10 # athenahealth gives up after 2 s
      min         = 1  # no cold start on the 2-second path
      max         = 20
      concurrency = 8 # the threads `make bench-webhook` measures at 200/s (p99 ≤ 2× the floor)
      env         = {}
      publishes   = ["ehr-events"]
      secrets     = ["athena-hub-secret"]
      bucket      = false
    }
    ehr_webhook = {
      trigger     = "http"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 10
      min         = 1
      max         = 20
      concurrency = 8 # the threads `make bench-webhook` measures at 200/s (p99 ≤ 2× the floor)
      env         = {}
      publishes   = ["ehr-events"]
      secrets     = ["webhook-secret"]
      bucket      = false
    }
    fhir_mapper = {
      trigger     = "topic:ehr-events"
      memory      = "1Gi"
      cpu         = "1"
      timeout     = 120
      min         = 0
      max         = 10
      concurrency = 4
      env         = {}
      publishes   = ["claims", "ehr-fetch", "ehr-events-dlq"]
      secrets     = ["patient-hash-key"]
      bucket      = false
    }
    api = {
      trigger     = "http"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 30
      min         = 0
      max         = 10
      concurrency = 4 # what it served at once before THREADS (4 per vCPU): PDF reports in 512 MiB
      env = {
        UPSTREAM_DASHBOARD_URL     = var.dashboard_url
        UPSTREAM_IDENTITY_API_KEY  = google_apikeys_key.identity_web.key_string
        UPSTREAM_IDENTITY_BASE_URL = "https://identitytoolkit.googleapis.com"
        UPSTREAM_UPLOADS_BUCKET    = google_storage_bucket.uploads.name
        UPSTREAM_UPLOAD_SIGNER     = "iam"
      }
      # Replaying a practice's dead letters (POST /v1/admin/dead-letters/<topic>/replay)
      # republishes them to their topic; it reads the holds (pubsub.tf api_reads_holds).
      publishes = ["claims", "ehr-events", "ehr-fetch", "alerts", "detector-runs"]
      # The session key; a practice's single sign-on client secret (its settings page
      # writes it: identity.tf api_writes_sso_secrets); the authenticator codes' seed key.
      secrets = ["dashboard-session-key", "sso-client-secret", "totp-seed-key"]
      bucket  = false
    }
    risk_scorer = {
      trigger     = "topic:claims"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 120
      min         = 0
      max         = 10
      concurrency = 4
      env         = {}
      publishes   = ["alerts", "claims-dlq"]
      secrets     = []
      bucket      = false
    }
    alert_dispatcher = {
      trigger     = "topic:alerts"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 120 # a few in-place retries of SMTP/Slack/webhook, 10 s timeout each
      min         = 0
      max         = 5
      concurrency = 4
      env         = { UPSTREAM_DASHBOARD_URL = var.dashboard_url }
      publishes   = ["alerts", "alerts-dlq"] # per-tenant digest fan-out, dead letters
      secrets     = ["smtp-credentials", "slack-webhooks", "outbound-webhook-secret"]
      bucket      = false
    }
    ehr_fetcher = {
      trigger     = "topic:ehr-fetch"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 120
      min         = 0
      max         = 10
      concurrency = 8 # waits on athenaOne, not on the CPU
      env         = { UPSTREAM_ATHENA_BASE_URL = var.athena_base_url }
      publishes   = ["claims", "ehr-fetch-dlq"]
      secrets     = ["athena-oauth", "patient-hash-key"]
      bucket      = false
    }
  }

  topic_functions = { for name, f in local.functions : name => trimprefix(f.trigger, "topic:")
  if startswith(f.trigger, "topic:") }
  http_functions = [for name, f in local.functions : name if f.trigger == "http"]

  manifest = jsondecode(file("${var.functions_build_dir}/manifest.json"))
}

# One service account per function: each gets exactly the roles listed in iam.tf.
resource "google_service_account" "function" {
  for_each     = local.functions
  account_id   = "${var.environment}-fn-${replace(each.key, "_", "-")}"
  display_name = "${each.key} Cloud Function (${var.environment})"
}

# The archive, named after its SHA-256: unchanged sources keep the same object and the
# function is not redeployed.
resource "google_storage_bucket_object" "source" {
  for_each = local.functions
  name     = "${each.key}-${local.manifest[each.key].sha256}.zip"
  bucket   = google_storage_bucket.sources.name
  source   = "${var.functions_build_dir}/${local.manifest[each.key].file}"
}

resource "google_cloudfunctions2_function" "function" {
  for_each    = local.functions
  name        = "${var.environment}-${replace(each.key, "_", "-")}"
  location    = var.region
  description = "Upstream ${each.key} (${var.environment})"

  build_config {
    runtime     = "python312"
    entry_point = each.key
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout
    min_instance_count               = each.value.min
    max_instance_count               = each.value.max
    max_instance_request_concurrency = each.value.concurrency
    service_account_email            = google_service_account.function[each.key].email
    # functions-framework's gunicorn serves THREADS requests at once (by default 4 per core
    # it sees): set to the concurrency Cloud Run sends, or requests beyond it would wait
    # inside the instance, where the autoscaler does not count them as load.
    environment_variables = merge(local.common_env, { THREADS = tostring(each.value.concurrency) },
    each.value.env)
    # Webhooks take the internet (HMAC-authenticated); everything else only Google's own
    # callers (Pub/Sub push, Eventarc).
    ingress_settings               = each.value.trigger == "http" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
  }

  dynamic "event_trigger" {
    for_each = each.value.trigger == "storage" ? [1] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.eventarc.email
      event_filters {
        attribute = "bucket"
        value     = google_storage_bucket.uploads.name
      }
    }
  }
}
