data "google_project" "this" {
  project_id = var.project_id
}

locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Events, one JSON object per message (README's event contract).
resource "google_pubsub_topic" "events" {
  name                       = var.name
  kms_key_name               = var.kms_key_name
  message_retention_duration = "86400s"

  depends_on = [google_kms_crypto_key_iam_member.pubsub]
}

# Messages the consumer failed to take after var.pubsub_max_delivery_attempts deliveries.
resource "google_pubsub_topic" "dead_letter" {
  name                       = "${var.name}-dead-letter"
  kms_key_name               = var.kms_key_name
  message_retention_duration = "604800s"

  depends_on = [google_kms_crypto_key_iam_member.pubsub]
}

# The subscription `event-platform consume` pulls (EVENT_PLATFORM_PUBSUB_SUBSCRIPTION).
resource "google_pubsub_subscription" "ingest" {
  name                       = "${var.name}-ingest"
  topic                      = google_pubsub_topic.events.id
  ack_deadline_seconds       = var.pubsub_ack_deadline_seconds
  message_retention_duration = "604800s"
  enable_message_ordering    = false

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.pubsub_max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expires
  }
}

# Keeps dead letters until someone looks at them (a topic without a subscription drops them).
resource "google_pubsub_subscription" "dead_letter_hold" {
  name                       = "${var.name}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering is done by Pub/Sub's own service agent: it must publish to the dead-letter
# topic and acknowledge (subscribe to) the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  subscription = google_pubsub_subscription.ingest.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
