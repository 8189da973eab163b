# The Iceberg warehouse backend (README, "Warehouse backends"), with var.iceberg_enabled: the
# catalog in Cloud SQL for PostgreSQL (private IP only), the data files in a GCS bucket, and
# what Dagster's service account needs of both. Run pods reach the instance through the Cloud
# SQL Auth Proxy sidecar of deploy/helm/values-iceberg.yaml.
locals {
  iceberg = var.iceberg_enabled ? 1 : 0
}

# Private services access: Cloud SQL's private IP comes from this range, peered into our VPC.
resource "google_compute_global_address" "private_services" {
  count         = local.iceberg
  name          = "${var.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.main.id
}

resource "google_service_networking_connection" "private_services" {
  count                   = local.iceberg
  network                 = google_compute_network.main.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services[0].name]
}

# The catalog holds table pointers and the writers' advisory locks, not data: a small regional
# instance. Encrypted with Google's keys: the data files are in the CMEK bucket below.
resource "google_sql_database_instance" "iceberg" {
  #checkov:skip=CKV_GCP_79:the major version is chosen, not tracked: upgrade it deliberately (Cloud SQL's in-place major upgrade) after testing the catalog on it
  count               = local.iceberg
  name                = "${var.name}-iceberg"
  region              = var.region
  database_version    = "POSTGRES_17"
  deletion_protection = true

  settings {
    tier                        = var.iceberg_db_tier
    edition                     = "ENTERPRISE"
    availability_type           = "REGIONAL"
    disk_type                   = "PD_SSD"
    disk_autoresize             = true
    deletion_protection_enabled = true

    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.main.id
      # Only the Cloud SQL Auth Proxy (or a client certificate) gets in: TLS with client certs.
      ssl_mode = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"
      transaction_log_retention_days = 7

      backup_retention_settings {
        retained_backups = 14
      }
    }

    maintenance_window {
      day  = 7
      hour = 3
    }

    insights_config {
      query_insights_enabled = true
    }

    # What the CIS benchmark asks a PostgreSQL instance to log.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "iceberg" {
  count    = local.iceberg
  name     = "iceberg"
  instance = google_sql_database_instance.iceberg[0].name
  # The catalog outlives a mistaken `terraform destroy`; the instance's deletion protection
  # stops that first.
  deletion_policy = "ABANDON"
}

# The password is read from Secret Manager while applying and written write-only: it is never
# in the repository, the plan or the state.
ephemeral "google_secret_manager_secret_version" "iceberg_db_password" {
  count  = local.iceberg
  secret = var.iceberg_db_password_secret
}

resource "google_sql_user" "iceberg" {
  count               = local.iceberg
  name                = "iceberg"
  instance            = google_sql_database_instance.iceberg[0].name
  password_wo         = ephemeral.google_secret_manager_secret_version.iceberg_db_password[0].secret_data
  password_wo_version = var.iceberg_db_password_version
}

# The warehouse's data and metadata files (EVENT_PLATFORM_ICEBERG_LOCATION=gs://<bucket>/warehouse).
# Iceberg never rewrites a file; snapshot expiry and orphan cleanup delete them, so versioning
# keeps a deleted file for var.iceberg_noncurrent_days, then lets it go.
resource "google_storage_bucket" "iceberg" {
  count                       = local.iceberg
  name                        = "${var.project_id}-${var.name}-iceberg"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = var.kms_key_name
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.iceberg_noncurrent_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.storage]
}

# Dagster's pods (code location and run pods, through Workload Identity) write and delete the
# warehouse's files and connect to the catalog through the Cloud SQL Auth Proxy.
resource "google_storage_bucket_iam_member" "dagster_writes_iceberg" {
  count  = local.iceberg
  bucket = google_storage_bucket.iceberg[0].name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.dagster.member
}

resource "google_project_iam_member" "dagster_connects_to_catalog" {
  count   = local.iceberg
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = google_service_account.dagster.member
}
