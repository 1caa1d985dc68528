"""The JSON API: `/v1/…` under the tenant of the caller's API key (issue 6)."""

import functions_framework
from flask import Request

from upstream.adapters.wiring import api_deps
from upstream.http import respond
from upstream.logs import configure_logging
from upstream.services.api import MAX_BODY, handle


@functions_framework.http
def api(request: Request) -> tuple[str, int, dict[str, str]]:
    configure_logging()
    body = bytes(request.stream.read(MAX_BODY + 1))
    return respond(handle(request.method, request.path, dict(request.args), dict(request.headers),
                          body, api_deps()))
