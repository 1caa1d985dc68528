"""athenahealth FHIR Subscription notifications: `POST /<customer_id>` (Contract 3a)."""

import functions_framework
from flask import Request

from upstream.adapters.wiring import webhook_deps
from upstream.domain.webhooks import MAX_BODY_BYTES
from upstream.http import (
    answer_http_errors_as_problems,
    method_not_allowed,
    raw_body,
    respond,
)
from upstream.logs import configure_logging
from upstream.services.webhooks import receive_athena

answer_http_errors_as_problems()


@functions_framework.http
def athena_webhook(request: Request) -> tuple[str, int, dict[str, str]]:
    configure_logging()
    if request.method != "POST":
        return method_not_allowed(request.method)
    customer_id = request.path.strip("/").split("/")[-1]
    return respond(receive_athena(customer_id, raw_body(request, MAX_BODY_BYTES),
                                  dict(request.headers), webhook_deps()))
