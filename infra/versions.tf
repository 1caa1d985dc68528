terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "7.22.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "7.22.0"
    }
  }
  # Remote state in a GCS bucket per environment, given at init time:
  #   terraform init -backend-config=environments/<env>.backend.hcl
  # (bucket and prefix there; the bucket is created once by hand, versioned).
  backend "gcs" {}
}

provider "google" {
  project = var.project
  region  = var.region
}

provider "google-beta" {
  project = var.project
  region  = var.region
}

data "google_project" "this" {}
