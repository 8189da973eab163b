terraform {
  # 1.11: the Iceberg catalog password is an ephemeral value written to a write-only argument.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.23, < 7.0" # 6.23: google_sql_user.password_wo
    }
  }

  # Remote state in GCS; the bucket (and prefix) are given at init, never committed:
  #   terraform init -backend-config="bucket=<state-bucket>" -backend-config="prefix=event-platform"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}
