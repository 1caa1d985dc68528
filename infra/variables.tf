variable "project" {
  description = "Google Cloud project id (one project per environment)."
  type        = string
}

variable "region" {
  description = "Region of the functions, the uploads bucket and the Eventarc trigger."
  type        = string
  default     = "us-central1"
}

variable "environment" {
  description = "Environment name, a prefix of every function and service account: staging or prod."
  type        = string
  validation {
    condition     = contains(["staging", "prod"], var.environment)
    error_message = "environment is staging or prod."
  }
}

variable "firestore_location" {
  description = "Firestore database location (a multi-region such as nam5, or a region)."
  type        = string
  default     = "nam5"
}

variable "tenants" {
  description = "Customer ids: each gets its secrets declared here (values are added out of band)."
  type        = list(string)
  default     = []
}

variable "functions_build_dir" {
  description = "Where `upstream package` wrote the function archives and manifest.json."
  type        = string
  default     = "../build/functions"
}

variable "athena_base_url" {
  description = "athenaOne API base (production, or https://api.preview.platform.athenahealth.com)."
  type        = string
  default     = "https://api.platform.athenahealth.com"
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (CMEK) for the uploads bucket and the topics; null keeps Google-managed keys."
  type        = string
  default     = null
}

variable "rejects_retention_days" {
  description = "Days a rejects file is kept in the uploads bucket."
  type        = number
  default     = 90
}

variable "uploads_retention_days" {
  description = "Days an uploaded file is kept (the records live in Firestore)."
  type        = number
  default     = 400
}

variable "dashboard_url" {
  description = "Where alert messages link to: the dashboard's public URL (the api function, or a domain in front of it)."
  type        = string
  default     = "https://upstream.example.invalid"
}

variable "dashboard_domain" {
  description = "The dashboard's host name (for Identity Platform's authorized domains)"
  type        = string
  default     = "upstream.example.invalid"
}

variable "operator_email" {
  description = "Who is paged when a dead-letter topic holds a message or an upload stays processing for an hour (Contract 7)."
  type        = string
}

variable "sso_providers" {
  description = "Practices that sign in with their own OpenID Connect provider: customer id => the issuer and client id their settings page holds."
  type = map(object({
    issuer    = string
    client_id = string
  }))
  default = {}
}
