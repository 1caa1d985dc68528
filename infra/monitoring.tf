# Contract 7: nothing stays lost quietly. The operator is paged when
# - any dead-letter hold has a message (a delivery failed 100 times over many hours, or a
#   function refused a message no retry can fix): `upstream dlq list|replay` is the way back;
# - an upload has been `processing` for an hour: the hourly upload watch (scheduler.tf) logs
#   each one as `event: upload_stuck`, counted by the log-based metric below.

resource "google_monitoring_notification_channel" "operator" {
  display_name = "Upstream operator (${var.environment})"
  type         = "email"
  labels = {
    email_address = var.operator_email
  }
}

resource "google_monitoring_alert_policy" "dead_letters_held" {
  display_name          = "Upstream ${var.environment}: a dead-letter topic holds messages"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.operator.id]
  conditions {
    display_name = "undelivered messages in a -dlq-hold subscription"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = monitoring.regex.full_match(\".*-dlq-hold\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
  documentation {
    content   = "Messages are held in a dead-letter topic. See what and why with `upstream dlq list <topic> --project ${var.project}`; after fixing the cause, `upstream dlq replay <topic>` (consumers are idempotent), then `upstream reconcile --all`."
    mime_type = "text/markdown"
  }
}

resource "google_logging_metric" "stuck_uploads" {
  name   = "${var.environment}-upstream-stuck-uploads"
  filter = "jsonPayload.event = \"upload_stuck\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "stuck_uploads" {
  display_name          = "Upstream ${var.environment}: an upload has been processing for an hour"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.operator.id]
  conditions {
    display_name = "upload_stuck log entries"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.stuck_uploads.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "3600s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }
  documentation {
    content   = "An upload is still `processing` an hour after it started. `upstream uploads --customer <id>` shows it; re-uploading the same bytes finishes it without doubling (the upload id is the content hash)."
    mime_type = "text/markdown"
  }
}
