resource "google_firestore_database" "default" {
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"
}

# Idempotency keys (webhook event ids) are deleted after their expire_at: 8 days for
# athenahealth events, 24 h otherwise. Until TTL removes one, the code treats it as absent.
resource "google_firestore_field" "idempotency_ttl" {
  database   = google_firestore_database.default.name
  collection = "idempotency"
  field      = "expire_at"
  ttl_config {}
}

# The evidence query of a denial alert: a payer's denied lines decided in the alert's window
# (adapters/firestore_store.py FirestoreRecords.denied_lines). Collection-group scope is not
# needed: every query runs under customers/{id}/claims.
resource "google_firestore_index" "claims_denied_by_payer" {
  database   = google_firestore_database.default.name
  collection = "claims"
  fields {
    field_path = "payer"
    order      = "ASCENDING"
  }
  fields {
    field_path = "outcome"
    order      = "ASCENDING"
  }
  fields {
    field_path = "decided_date"
    order      = "ASCENDING"
  }
}

# The access audit (Contract 6): entries are kept six years (HIPAA 45 CFR 164.316(b)(2));
# each carries expire_at = written + 6 years, which this TTL policy enforces.
resource "google_firestore_field" "audit_ttl" {
  database   = google_firestore_database.default.name
  collection = "audit"
  field      = "expire_at"
  ttl_config {}
}

# GET /v1/audit?actor=: one actor's entries, newest first (adapters/firestore_audit.py).
resource "google_firestore_index" "audit_by_actor" {
  database   = google_firestore_database.default.name
  collection = "audit"
  fields {
    field_path = "actor"
    order      = "ASCENDING"
  }
  fields {
    field_path = "at"
    order      = "DESCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "DESCENDING"
  }
}

# The pre-submission queue (dashboard /check): a practice's pending lines scored HIGH or
# MEDIUM, newest first (adapters/firestore_risk.py flagged_lines).
resource "google_firestore_index" "risk_flagged" {
  database   = google_firestore_database.default.name
  collection = "risk_scores"
  fields {
    field_path = "category"
    order      = "ASCENDING"
  }
  fields {
    field_path = "scored_at"
    order      = "DESCENDING"
  }
}
