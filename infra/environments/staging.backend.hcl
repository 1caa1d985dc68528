bucket = "upstream-staging-tfstate"
prefix = "upstream/staging"
