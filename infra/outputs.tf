output "athena_webhook_url" {
  description = "Register `<this>/<customer_id>` as the athenahealth subscription endpoint."
  value       = google_cloudfunctions2_function.function["athena_webhook"].service_config[0].uri
}

output "ehr_webhook_url" {
  description = "Generic EHR webhook (X-Customer-ID, X-Timestamp, X-Signature)."
  value       = google_cloudfunctions2_function.function["ehr_webhook"].service_config[0].uri
}

output "api_url" {
  description = "The JSON API (`/v1/…`, OpenAPI at `/v1/openapi.json`); the dashboard is served at `/` (signed session after an API-key sign-in)."
  value       = google_cloudfunctions2_function.function["api"].service_config[0].uri
}

output "uploads_bucket" {
  value = google_storage_bucket.uploads.name
}

output "function_service_accounts" {
  value = { for name, sa in google_service_account.function : name => sa.email }
}
