"""The Pub/Sub topics, as Terraform declares them (infra/pubsub.tf `topics`); every topic has
a dead-letter twin `<topic>-dlq` with a pull subscription `<topic>-dlq-hold` that keeps what
lands there (Contract 7). The functions, the local stack and the CLI share this list."""

TOPICS = ("claims", "ehr-events", "ehr-fetch", "alerts", "detector-runs")
