variable "project_id" {
  description = "GCP project that holds everything below."
  type        = string
}

variable "region" {
  description = "Region of the bucket, the registry, the cluster and Pub/Sub's message storage."
  type        = string
  default     = "europe-west1"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "event-platform"
}

variable "k8s_namespace" {
  description = "Kubernetes namespace of the Helm release and deploy/k8s (Workload Identity)."
  type        = string
  default     = "event-platform"
}

variable "pubsub_max_delivery_attempts" {
  description = "Deliveries of one message before it goes to the dead-letter topic (5-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.pubsub_max_delivery_attempts >= 5 && var.pubsub_max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts."
  }
}

variable "pubsub_ack_deadline_seconds" {
  description = "How long the consumer has to write a batch's file before redelivery."
  type        = number
  default     = 60
}

variable "landing_retention_days" {
  description = "Days a landed file is kept in the landing bucket."
  type        = number
  default     = 30
}

variable "master_authorized_cidr" {
  description = "The only network allowed to reach the cluster's control plane (e.g. a bastion)."
  type        = string
}

variable "kms_key_name" {
  description = "Cloud KMS key that encrypts the landing bucket, the registry and the topics (CMEK)."
  type        = string
}

variable "rbac_security_group" {
  description = "Google Group that holds the groups bound by Kubernetes RBAC (gke-security-groups@DOMAIN)."
  type        = string
}

variable "iceberg_enabled" {
  description = "Create the Iceberg warehouse backend: a Cloud SQL for PostgreSQL catalog and a GCS bucket for the data files (EVENT_PLATFORM_WAREHOUSE=iceberg)."
  type        = bool
  default     = false
}

variable "iceberg_db_password_secret" {
  description = "Secret Manager secret (name or projects/P/secrets/S) whose latest version is the catalog user's password; created outside Terraform, read only while applying."
  type        = string
  default     = "event-platform-iceberg-db-password"
}

variable "iceberg_db_password_version" {
  description = "Raise it after adding a new version of the password secret: the catalog user's password is then set again."
  type        = number
  default     = 1
}

variable "iceberg_db_tier" {
  description = "Machine type of the catalog's Cloud SQL instance (it holds table pointers only: commits, not data)."
  type        = string
  default     = "db-custom-1-3840"
}

variable "iceberg_noncurrent_days" {
  description = "Days a deleted or overwritten Iceberg data file is kept as a noncurrent version (recovery after a mistaken cleanup)."
  type        = number
  default     = 7
}
