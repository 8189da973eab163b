# One service account per role, each with only what that role does. Kubernetes service accounts
# act as them through Workload Identity (deploy/helm/values.yaml, deploy/k8s/).
# The HTTP API needs no Google API at all (it reads the shared volume), so it has none.

# Dagster: the code location, webserver, daemon and run pods read landed files.
resource "google_service_account" "dagster" {
  account_id   = "${var.name}-dagster"
  display_name = "event_platform Dagster (code location, daemon, runs)"
}

resource "google_storage_bucket_iam_member" "dagster_reads_landing" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.dagster.member
}

# The pubsub_backlog_ok check reads the subscription's state.
resource "google_pubsub_subscription_iam_member" "dagster_views_subscription" {
  subscription = google_pubsub_subscription.ingest.id
  role         = "roles/pubsub.viewer"
  member       = google_service_account.dagster.member
}

# The consumer pulls messages and writes batch files into landing (write, then rename: a
# rename in GCS is a copy and a delete, hence objectUser rather than objectCreator).
resource "google_service_account" "consumer" {
  account_id   = "${var.name}-consumer"
  display_name = "event_platform Pub/Sub consumer"
}

resource "google_pubsub_subscription_iam_member" "consumer_pulls" {
  subscription = google_pubsub_subscription.ingest.id
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.consumer.member
}

resource "google_storage_bucket_iam_member" "consumer_writes_landing" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectUser"
  member = google_service_account.consumer.member
}

# Producers publish events; they get no other right.
resource "google_service_account" "publisher" {
  account_id   = "${var.name}-publisher"
  display_name = "event_platform event publisher"
}

resource "google_pubsub_topic_iam_member" "publisher_publishes" {
  topic  = google_pubsub_topic.events.id
  role   = "roles/pubsub.publisher"
  member = google_service_account.publisher.member
}

# CI pushes images.
resource "google_service_account" "ci" {
  account_id   = "${var.name}-ci"
  display_name = "event_platform CI (image pushes)"
}

resource "google_artifact_registry_repository_iam_member" "ci_pushes" {
  repository = google_artifact_registry_repository.images.name
  location   = google_artifact_registry_repository.images.location
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.ci.member
}

# GKE nodes: pull our images, write logs and metrics; nothing else.
resource "google_service_account" "nodes" {
  account_id   = "${var.name}-nodes"
  display_name = "event_platform GKE nodes"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
  ])
  project = var.project_id
  role    = each.value
  member  = google_service_account.nodes.member
}

resource "google_artifact_registry_repository_iam_member" "nodes_pull" {
  repository = google_artifact_registry_repository.images.name
  location   = google_artifact_registry_repository.images.location
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.nodes.member
}

# Workload Identity: Kubernetes service account -> Google service account.
locals {
  workload_identities = {
    dagster  = { gsa = google_service_account.dagster.name, ksa = "event-platform-dagster" }
    consumer = { gsa = google_service_account.consumer.name, ksa = "event-platform-consumer" }
  }
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = local.workload_identities
  service_account_id = each.value.gsa
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.k8s_namespace}/${each.value.ksa}]"

  depends_on = [google_container_cluster.main]
}

# CMEK: the Google service agents that encrypt for us may use the key.
resource "google_kms_crypto_key_iam_member" "pubsub" {
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.pubsub_service_agent
}

resource "google_kms_crypto_key_iam_member" "storage" {
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@gs-project-accounts.iam.gserviceaccount.com"
}

resource "google_kms_crypto_key_iam_member" "artifact_registry" {
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
}

resource "google_kms_crypto_key_iam_member" "compute" {
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@compute-system.iam.gserviceaccount.com"
}
