"""Upstream: early warning for healthcare revenue operations.

`upstream.domain` is pure (no cloud client); `upstream.adapters` is the only code that talks
to Google Cloud; `upstream.services` holds the use-cases that the Cloud Functions and the
command line both call.
"""

__version__ = "0.1.0"
