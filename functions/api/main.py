"""The JSON API (`/v1/…`, API keys) and the dashboard (every other path, signed session
cookie), under the caller's tenant only (issue 6)."""

import functions_framework
from flask import Request

from upstream.adapters.wiring import api_deps, dashboard_deps
from upstream.http import answer_http_errors_as_problems, serve_api
from upstream.logs import configure_logging

answer_http_errors_as_problems()


@functions_framework.http
def api(request: Request) -> tuple[str | bytes, int, dict[str, str]]:
    configure_logging()
    return serve_api(request, api_deps(), dashboard_deps())
