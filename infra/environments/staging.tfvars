project         = "upstream-staging"
environment     = "staging"
region          = "us-central1"
tenants         = []
athena_base_url = "https://api.preview.platform.athenahealth.com"
operator_email  = "oncall-staging@upstream.example"
# Practices with their own single sign-on: { "<customer>" = { issuer = "https://…", client_id = "…" } }
sso_providers = {}
