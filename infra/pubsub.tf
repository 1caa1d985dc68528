# Topics, their dead-letter twins, and the push subscriptions that deliver to the functions.
#
# Why our own push subscriptions and not Eventarc Pub/Sub triggers: the subscription Eventarc
# creates for a function cannot be given a dead-letter topic from Terraform
# (hashicorp/terraform-provider-google#25069, #17697), and a message no retry can deliver
# must end somewhere visible. functions-framework turns the push body into the same
# `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent Eventarc sends, which is also how
# the local stack delivers (its push subscriptions are these, on the emulator).

locals {
  # Same list as shared/upstream/stack/topology.py TOPICS.
  topics = ["claims", "ehr-events", "ehr-fetch", "alerts", "detector-runs"]
  # Pub/Sub's maximum (Contract 7): with a 10 s to 600 s backoff, 100 attempts span many
  # hours, so an outage of a function for an hour loses nothing and dead-letters nothing.
  # Same as shared/upstream/stack/topology.py MAX_DELIVERY_ATTEMPTS.
  max_delivery_attempts = 100
  pubsub_agent          = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "topic" {
  for_each                   = toset(local.topics)
  name                       = each.value
  kms_key_name               = var.kms_key_name
  message_retention_duration = "86400s"
}

resource "google_pubsub_topic" "dead_letter" {
  for_each     = toset(local.topics)
  name         = "${each.value}-dlq"
  kms_key_name = var.kms_key_name
  # Dead letters are evidence of lost work: kept for the most a topic allows.
  message_retention_duration = "604800s"
}

# Keeps what lands in each dead-letter topic until someone looks (`gcloud pubsub subscriptions
# pull <topic>-dlq-hold`), and lets an operator replay it.
resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each                   = toset(local.topics)
  name                       = "${each.value}-dlq-hold"
  topic                      = google_pubsub_topic.dead_letter[each.value].id
  message_retention_duration = "604800s"
  retain_acked_messages      = false
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

# The api function lists and replays a practice's held messages (Contract 7): it pulls from
# the holds, and acknowledges only what it republished.
resource "google_pubsub_subscription_iam_member" "api_reads_holds" {
  for_each     = toset(local.topics)
  subscription = google_pubsub_subscription.dead_letter_hold[each.value].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.function["api"].email}"
}

# The identity Pub/Sub signs its pushes with (OIDC); the functions accept only it.
resource "google_service_account" "pusher" {
  account_id   = "${var.environment}-pubsub-pusher"
  display_name = "Pub/Sub push to the functions (${var.environment})"
}

resource "google_pubsub_subscription" "push" {
  for_each = local.topic_functions
  name     = "${replace(each.key, "_", "-")}-push"
  topic    = google_pubsub_topic.topic[each.value].id
  # A delivery not acknowledged within the function's timeout is redelivered.
  ack_deadline_seconds       = min(600, local.functions[each.key].timeout)
  message_retention_duration = "604800s"
  push_config {
    push_endpoint = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    }
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value].id
    max_delivery_attempts = local.max_delivery_attempts
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering is done by the Pub/Sub service agent: it publishes to the dead-letter topic
# and acknowledges on the source subscription.
resource "google_pubsub_topic_iam_member" "agent_dead_letter" {
  for_each = toset(local.topics)
  topic    = google_pubsub_topic.dead_letter[each.value].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_source" {
  for_each     = local.topic_functions
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The service agent mints the push's OIDC token as the pusher.
resource "google_service_account_iam_member" "agent_mints_pusher_tokens" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# Each function publishes to exactly the topics it lists.
resource "google_pubsub_topic_iam_member" "function_publishes" {
  for_each = { for pair in flatten([for name, f in local.functions : [
    for topic in f.publishes : { key = "${name}/${topic}", name = name, topic = topic }
  ]]) : pair.key => pair }
  topic  = endswith(each.value.topic, "-dlq") ? google_pubsub_topic.dead_letter[trimsuffix(each.value.topic, "-dlq")].name : google_pubsub_topic.topic[each.value.topic].name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.function[each.value.name].email}"
}
