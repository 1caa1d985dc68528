# Daily at 06:00 UTC (the authorization calendar, the sequential drift test); weekly on
# Mondays at 06:30 (the weekly tests, and the daily ones again: runs are idempotent).
# `customer = "*"` fans out one message per tenant (services/detector_runs.py).
resource "google_cloud_scheduler_job" "detector_runs" {
  for_each = {
    daily  = "0 6 * * *"
    weekly = "30 6 * * 1"
  }
  name      = "${var.environment}-detector-runs-${each.key}"
  region    = var.region
  schedule  = each.value
  time_zone = "Etc/UTC"
  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
  }
  pubsub_target {
    topic_name = google_pubsub_topic.topic["detector-runs"].id
    data       = base64encode(jsonencode({ run = each.key, customer = "*" }))
  }
}

# A Pub/Sub target is published by Cloud Scheduler's service agent: it may publish to
# detector-runs and nowhere else.
resource "google_pubsub_topic_iam_member" "scheduler_publishes_runs" {
  topic  = google_pubsub_topic.topic["detector-runs"].name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
}

# The daily digest at 12:00 UTC (07:00 in New York): what digest channels and quiet hours
# held, one message per channel (services/dispatch_alerts.py).
resource "google_cloud_scheduler_job" "alert_digest" {
  name      = "${var.environment}-alert-digest-daily"
  region    = var.region
  schedule  = "0 12 * * *"
  time_zone = "Etc/UTC"
  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
  }
  pubsub_target {
    topic_name = google_pubsub_topic.topic["alerts"].id
    data       = base64encode(jsonencode({ digest = "daily", customer = "*" }))
  }
}

resource "google_pubsub_topic_iam_member" "scheduler_publishes_digest" {
  topic  = google_pubsub_topic.topic["alerts"].name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
}

# The weekly summary e-mail, Mondays at 13:00 UTC (08:00 in New York), after the weekly run.
resource "google_cloud_scheduler_job" "weekly_summary" {
  name      = "${var.environment}-weekly-summary"
  region    = var.region
  schedule  = "0 13 * * 1"
  time_zone = "Etc/UTC"
  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
  }
  pubsub_target {
    topic_name = google_pubsub_topic.topic["alerts"].id
    data       = base64encode(jsonencode({ summary = "weekly", customer = "*" }))
  }
}
