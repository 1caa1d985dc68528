"""Deployment helpers: the functions' source archives (Terraform uploads them)."""
