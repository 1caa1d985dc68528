bucket = "upstream-prod-tfstate"
prefix = "upstream/prod"
