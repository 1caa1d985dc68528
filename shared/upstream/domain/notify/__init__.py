"""Telling people: which channel gets which alert, and what the message says."""
