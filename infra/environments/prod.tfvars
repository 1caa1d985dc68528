project        = "upstream-prod"
environment    = "prod"
region         = "us-central1"
tenants        = []
operator_email = "oncall-prod@upstream.example"
