"""Turning a use-case `Answer` into what functions-framework (Flask) sends back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

from werkzeug.exceptions import HTTPException

from upstream.logs import get_logger
from upstream.services.webhooks import Answer, problem

log = get_logger(__name__)

if TYPE_CHECKING:
    from upstream.services.api import ApiDeps
    from upstream.services.dashboard import DashboardDeps


def problem_for_http_error(error: HTTPException) -> tuple[str, int, dict[str, str]]:
    """werkzeug's own refusals (no route matched, a path with a newline, a bad request line,
    a body over Flask's limit) as RFC 7807 problem+json instead of its HTML pages."""
    status = error.code or 500
    kind = (error.name or "error").lower().replace(" ", "-")
    return respond(problem(status, kind, error.name or "Error"))


def answer_http_errors_as_problems() -> None:
    """Called by each HTTP function's `main.py` at import, inside functions-framework's app
    context, so every error the framework raises before our code runs is problem+json."""
    import functions_framework

    functions_framework.errorhandler(HTTPException)(problem_for_http_error)


def retry_later_without_a_traceback(busy: Exception, **context: str) -> NoReturn:
    """An expected, retryable refusal (another delivery holds the upload's lease): a warning
    and a 503, which Eventarc retries like any failure, instead of the framework's ERROR
    traceback for an uncaught exception."""
    from flask import abort

    log.warning("busy, the event will be retried", extra={"error": str(busy), **context})
    abort(503, description="busy; retry later")


def respond(answer: Answer) -> tuple[str, int, dict[str, str]]:
    return (json.dumps(answer.body), answer.status,
            {"Content-Type": answer.content_type, **answer.headers})


def method_not_allowed(method: str) -> tuple[str, int, dict[str, str]]:
    answer = problem(405, "method-not-allowed", "Use POST", f"{method} is not accepted")
    body, status, headers = respond(answer)
    return body, status, {**headers, "Allow": "POST"}


def raw_body(request: Any, limit: int) -> bytes:
    """At most limit + 1 bytes: enough to know a body is too large without reading it all."""
    return bytes(request.stream.read(limit + 1))


def serve_api(request: Any, api: ApiDeps,
              dashboard: DashboardDeps) -> tuple[str | bytes, int, dict[str, str]]:
    """The `api` function: `/v1/…` is the JSON API, every other path the dashboard."""
    from upstream.services import api as json_api
    from upstream.services import dashboard as pages
    from upstream.services import web_pages

    if request.path == "/v1" or request.path.startswith("/v1/"):
        return respond(json_api.handle(request.method, request.path, dict(request.args),
                                       dict(request.headers), raw_body(request, json_api.MAX_BODY),
                                       api, request.remote_addr))
    secure = request.headers.get("X-Forwarded-Proto", request.scheme) == "https"
    page = pages.handle(web_pages.WebRequest(
        request.method, request.path, dict(request.args), dict(request.headers),
        raw_body(request, web_pages.MAX_FORM), secure, request.remote_addr), dashboard)
    return (page.body if page.body is not None else page.html), page.status, page.headers
