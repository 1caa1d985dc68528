# The uploads bucket (`uploads/<customer>/…` in, `rejects/<customer>/…` out) and the bucket
# holding the functions' source archives.

resource "google_storage_bucket" "uploads" {
  #checkov:skip=CKV_GCP_62:access is recorded by data-access audit logs (iam.tf), not legacy usage logs
  #checkov:skip=CKV_GCP_78:versioning off on purpose: uploads are identified by content hash; old generations would only keep PHI longer
  name                        = "${var.project}-uploads"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Re-uploading a file is how a practice corrects it; the content hash, not the object
  # generation, identifies an upload, so old generations are of no use (and are PHI).
  versioning {
    enabled = false
  }
  lifecycle_rule {
    condition {
      age            = var.rejects_retention_days
      matches_prefix = ["rejects/"]
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      age            = var.uploads_retention_days
      matches_prefix = ["uploads/"]
    }
    action {
      type = "Delete"
    }
  }
  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }
  # The dashboard's upload page sends files here with V4 signed URLs (the api function signs
  # them): only that origin, only the methods and headers of a signed or resumable upload.
  cors {
    origin = [var.dashboard_url]
    # PUT: a signed single upload or a resumable session's chunk; POST: the signed start of a
    # resumable session. The page reads the session's Location and, after a dropped chunk,
    # its Range; it sends Content-Range with each chunk.
    method = ["PUT", "POST"]
    response_header = ["Content-Type", "x-goog-content-length-range", "x-goog-resumable",
    "Content-Range", "Location", "Range"]
    max_age_seconds = 3600
  }
}

resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:access is recorded by data-access audit logs (iam.tf), not legacy usage logs
  #checkov:skip=CKV_GCP_78:archives are immutable, named by their SHA-256; a version history adds nothing
  name                        = "${var.project}-function-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = false
  }
  lifecycle_rule {
    condition {
      # A deployed function runs from its built image, not from this archive; Terraform puts
      # a deleted archive back on the next apply without redeploying (same name, same hash).
      age = 180
    }
    action {
      type = "Delete"
    }
  }
}
