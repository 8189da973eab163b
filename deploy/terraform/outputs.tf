output "pubsub_topic" {
  description = "EVENT_PLATFORM_PUBSUB_TOPIC"
  value       = google_pubsub_topic.events.name
}

output "pubsub_subscription" {
  description = "EVENT_PLATFORM_PUBSUB_SUBSCRIPTION"
  value       = google_pubsub_subscription.ingest.name
}

output "pubsub_dead_letter_topic" {
  description = "Where undeliverable messages go (kept by the -dead-letter-hold subscription)."
  value       = google_pubsub_topic.dead_letter.name
}

output "landing_bucket" {
  description = "Bucket mounted as the landing folder."
  value       = google_storage_bucket.landing.name
}

output "image_repository" {
  description = "Push the image here; the Helm values' image.repository."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/event-platform"
}

output "cluster_name" {
  value = google_container_cluster.main.name
}

output "service_accounts" {
  description = "Google service accounts per role (annotate the Kubernetes ones with these)."
  value = {
    dagster   = google_service_account.dagster.email
    consumer  = google_service_account.consumer.email
    publisher = google_service_account.publisher.email
    ci        = google_service_account.ci.email
    nodes     = google_service_account.nodes.email
  }
}

output "iceberg" {
  description = "With iceberg_enabled: the Cloud SQL Auth Proxy's instance connection name and EVENT_PLATFORM_ICEBERG_LOCATION (deploy/helm/values-iceberg.yaml)."
  value = var.iceberg_enabled ? {
    instance_connection_name = google_sql_database_instance.iceberg[0].connection_name
    database                 = google_sql_database.iceberg[0].name
    user                     = google_sql_user.iceberg[0].name
    location                 = "gs://${google_storage_bucket.iceberg[0].name}/warehouse"
  } : null
}
