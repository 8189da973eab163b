# The image every role runs (Dockerfile), pushed by CI.
resource "google_artifact_registry_repository" "images" {
  repository_id = var.name
  location      = var.region
  format        = "DOCKER"
  description   = "event_platform images"
  kms_key_name  = var.kms_key_name

  docker_config {
    immutable_tags = true
  }

  depends_on = [google_kms_crypto_key_iam_member.artifact_registry]
}
