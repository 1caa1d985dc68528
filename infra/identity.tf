# People of a practice sign in with Identity Platform (Contract 6): e-mail and password, an
# e-mailed link, or the practice's own single sign-on (below), with a TOTP second factor. Roles and the practice are custom claims set by `upstream user add`
# (firebase-admin), never by the client.

resource "google_project_service" "identity_toolkit" {
  project            = var.project
  service            = "identitytoolkit.googleapis.com"
  disable_on_destroy = false
}

resource "google_identity_platform_config" "default" {
  project = var.project
  # A person has one account; an address taken by one practice cannot be registered again.
  sign_in {
    allow_duplicate_emails = false
    # Not required: a person signs in with their password or with an e-mailed one-time link
    # (the dashboard's "e-mail me a sign-in link"). Sign-up stays refused below, so a link
    # never makes an account; links are only made by the server for existing people.
    email {
      enabled           = true
      password_required = false
    }
  }
  # Identity Platform's own second factors stay off: Upstream asks for the authenticator
  # code itself (domain/practice/second_factor.py; the Auth emulator cannot enrol TOTP, so
  # Identity Platform's flow could not be proven). Left on, someone holding only a password
  # could enrol a factor of their own on the account through the public REST API and lock
  # its owner out of the dashboard.
  mfa {
    state = "DISABLED"
  }
  # Sign-up is refused: people are created by an admin (`upstream user add`), never by
  # themselves from the sign-in endpoint.
  client {
    permissions {
      disabled_user_signup   = true
      disabled_user_deletion = true
    }
  }
  authorized_domains = [var.dashboard_domain]
  depends_on         = [google_project_service.identity_toolkit]
}

# The web API key the dashboard's server sends to the sign-in endpoints. Not a secret (it
# names the project), but restricted to the Identity Toolkit API so it opens nothing else.
resource "google_apikeys_key" "identity_web" {
  project      = var.project
  name         = "${var.environment}-identity-web"
  display_name = "Upstream dashboard sign-in (${var.environment})"
  restrictions {
    api_targets {
      service = "identitytoolkit.googleapis.com"
    }
  }
}

# The api function verifies ID tokens and session cookies with revocation checked (reads the
# user), mints session cookies and revokes them on sign-out: firebaseauth.admin is the
# narrowest predefined role holding users.get, users.update and createSessionCookie. No other
# function touches Identity Platform; people are managed by operators (`upstream user`).
resource "google_project_iam_member" "api_identity" {
  project = var.project
  role    = "roles/firebaseauth.admin"
  member  = "serviceAccount:${google_service_account.function["api"].email}"
}

# Single sign-on with a practice's own OpenID Connect provider (Contract 6). The dashboard's
# server runs the code flow itself (PKCE, the client secret from Secret Manager) and verifies
# the provider's ID token; Identity Platform then signs the person in with that token
# (`accounts:signInWithIdp`), so it must know the provider: same issuer and client id as the
# practice's settings page. Identity Platform needs no client secret for that (ID tokens
# only), so none is in Terraform state.
resource "google_identity_platform_oauth_idp_config" "practice" {
  for_each     = var.sso_providers
  project      = var.project
  name         = "oidc.upstream-${each.key}" # domain/practice/sso.py provider_id
  display_name = "Upstream ${each.key}"
  issuer       = each.value.issuer
  client_id    = each.value.client_id
  enabled      = true
  response_type {
    id_token = true
    code     = false
  }
  depends_on = [google_project_service.identity_toolkit]
}

# The settings page stores the provider's client secret as a new version of the practice's
# declared secret (adapters/secrets.py adds a version, creating nothing). Linking the
# provider to the invited person uses a custom token the api function signs as itself
# through IAM signBlob: iam.tf api_signs_upload_urls already grants that.
resource "google_secret_manager_secret_iam_member" "api_writes_sso_secrets" {
  for_each  = toset(var.tenants)
  secret_id = google_secret_manager_secret.tenant["sso-client-secret-${each.value}"].id
  role      = "roles/secretmanager.secretVersionAdder"
  member    = "serviceAccount:${google_service_account.function["api"].email}"
}
