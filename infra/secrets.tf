# Secret containers only: values are added out of band (`gcloud secrets versions add`), so no
# secret value is ever in Terraform state or in the repository.

locals {
  # Per-tenant secrets the code reads (shared/upstream/services/tenants.py).
  tenant_secret_prefixes = ["patient-hash-key", "webhook-secret", "athena-hub-secret", "athena-oauth",
  "slack-webhooks", "outbound-webhook-secret", "sso-client-secret"]
  tenant_secrets = { for pair in setproduct(local.tenant_secret_prefixes, var.tenants) :
  "${pair[0]}-${pair[1]}" => { prefix = pair[0], tenant = pair[1] } }
  # Global secrets the code reads.
  global_secrets = ["network-signal-key", "smtp-credentials", "dashboard-session-key", "totp-seed-key"]

  # Who reads what: a function listing a prefix gets access to that secret of every tenant.
  secret_readers = merge(
    { for pair in flatten([for name, f in local.functions : [
      for key, s in local.tenant_secrets : { key = "${name}/${key}", name = name, secret = key }
      if contains(f.secrets, s.prefix)
    ]]) : pair.key => pair },
    { for pair in flatten([for name, f in local.functions : [
      for secret in local.global_secrets : { key = "${name}/${secret}", name = name, secret = secret }
      if contains(f.secrets, secret)
    ]]) : pair.key => pair },
  )
}

resource "google_secret_manager_secret" "tenant" {
  for_each  = local.tenant_secrets
  secret_id = each.key
  labels = {
    tenant = each.value.tenant
    kind   = each.value.prefix
  }
  replication {
    auto {}
  }
}

# Platform keys: network signals made unattributable (domain/detect/network.py), SMTP
# credentials, the key that signs dashboard sessions (domain/session.py), and the key each
# person's authenticator secret is derived from (domain/practice/second_factor.py: rotating
# it asks everyone to add their authenticator again).
resource "google_secret_manager_secret" "global" {
  for_each  = toset(local.global_secrets)
  secret_id = each.value
  replication {
    auto {}
  }
}

# Reading a value: the newest version, and for webhook secrets the two newest enabled ones
# (a rotation verifies with both), which lists versions: accessor + viewer, on that secret only.
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each  = local.secret_readers
  secret_id = contains(local.global_secrets, each.value.secret) ? google_secret_manager_secret.global[each.value.secret].id : google_secret_manager_secret.tenant[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.name].email}"
}

resource "google_secret_manager_secret_iam_member" "viewer" {
  for_each  = local.secret_readers
  secret_id = contains(local.global_secrets, each.value.secret) ? google_secret_manager_secret.global[each.value.secret].id : google_secret_manager_secret.tenant[each.value.secret].id
  role      = "roles/secretmanager.viewer"
  member    = "serviceAccount:${google_service_account.function[each.value.name].email}"
}
