"""Any other EHR or FHIR server: signed full resources (Contract 3b)."""

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
from upstream.services.webhooks import receive_ehr

answer_http_errors_as_problems()


@functions_framework.http
def ehr_webhook(request: Request) -> tuple[str, int, dict[str, str]]:
    configure_logging()
    if request.method != "POST":
        return method_not_allowed(request.method)
    return respond(receive_ehr(raw_body(request, MAX_BODY_BYTES), dict(request.headers),
                               webhook_deps()))
