project     = "upstream-prod"
environment = "prod"
region      = "us-central1"
tenants     = []
