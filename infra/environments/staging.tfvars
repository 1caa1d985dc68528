project         = "upstream-staging"
environment     = "staging"
region          = "us-central1"
tenants         = []
athena_base_url = "https://api.preview.platform.athenahealth.com"
operator_email  = "oncall-staging@upstream.example"
