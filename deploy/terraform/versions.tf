terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 7.0"
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
