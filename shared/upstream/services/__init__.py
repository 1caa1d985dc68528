"""Use-cases: what a function or a command does, with its adapters passed in."""
