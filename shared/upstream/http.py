"""Turning a use-case `Answer` into what functions-framework (Flask) sends back."""

from __future__ import annotations

import json
from typing import Any

from upstream.services.webhooks import Answer, problem


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
