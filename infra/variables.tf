variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the functions, bucket and Eventarc triggers."
  type        = string
  default     = "us-central1"
}
