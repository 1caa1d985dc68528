# What Cloud Scheduler publishes, all times UTC; each message with `customer = "*"` is
# fanned out one per tenant by the function that receives it.
# - detector runs, daily 06:00 (authorization calendar, sequential drift test) and Mondays
#   06:30 (the weekly tests, and the daily ones again: runs are idempotent);
# - the alert digest, daily 12:00 (07:00 in New York): what digest channels and quiet hours held;
# - the weekly summary e-mail, Mondays 13:00, after the weekly run;
# - the upload watch, hourly: uploads stuck in `processing` are logged for monitoring.tf;
# - the monthly practice report, Mondays 13:30: cron cannot say "the first Monday", so the
#   dispatcher sends it only when the day of the month is 1–7 (services/monthly_notice.py).
locals {
  scheduled = {
    "detector-runs-daily"  = { schedule = "0 6 * * *", topic = "detector-runs", data = { run = "daily", customer = "*" } }
    "detector-runs-weekly" = { schedule = "30 6 * * 1", topic = "detector-runs", data = { run = "weekly", customer = "*" } }
    "alert-digest-daily"   = { schedule = "0 12 * * *", topic = "alerts", data = { digest = "daily", customer = "*" } }
    "weekly-summary"       = { schedule = "0 13 * * 1", topic = "alerts", data = { summary = "weekly", customer = "*" } }
    "upload-watch-hourly"  = { schedule = "15 * * * *", topic = "detector-runs", data = { run = "uploads", customer = "*" } }
    "monthly-report"       = { schedule = "30 13 * * 1", topic = "alerts", data = { report = "monthly", customer = "*" } }
  }
  scheduled_topics = toset([for job in local.scheduled : job.topic])
}

resource "google_cloud_scheduler_job" "job" {
  for_each  = local.scheduled
  name      = "${var.environment}-${each.key}"
  region    = var.region
  schedule  = each.value.schedule
  time_zone = "Etc/UTC"
  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
  }
  pubsub_target {
    topic_name = google_pubsub_topic.topic[each.value.topic].id
    data       = base64encode(jsonencode(each.value.data))
  }
}

# A Pub/Sub target is published by Cloud Scheduler's service agent: it may publish to the
# scheduled topics and nowhere else.
resource "google_pubsub_topic_iam_member" "scheduler_publishes" {
  for_each = local.scheduled_topics
  topic    = google_pubsub_topic.topic[each.value].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
}
