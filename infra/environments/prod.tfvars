project        = "upstream-prod"
environment    = "prod"
region         = "us-central1"
tenants        = []
operator_email = "oncall-prod@upstream.example"
# Practices with their own single sign-on: { "<customer>" = { issuer = "https://…", client_id = "…" } }
sso_providers = {}
