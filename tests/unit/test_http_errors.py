"""werkzeug's own refusals as problem+json through the real function entry points (built by
functions-framework's `create_app`, as `functions-framework --target` builds them), and the
busy upload answered as a warning and a 503 rather than a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from functions_framework import create_app
from werkzeug.exceptions import HTTPException

from upstream.http import retry_later_without_a_traceback
from upstream.ports import UploadBusy

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.mark.parametrize("name", ["api", "ehr_webhook", "athena_webhook"])
def test_paths_flask_cannot_route_are_problem_json(name: str) -> None:
    app = create_app(name, str(FUNCTIONS / name / "main.py"), "http")  # type: ignore[no-untyped-call]
    client = app.test_client()
    for path in ("/v1/alerts/a%0Ab", "/favicon.ico", "/robots.txt"):
        answer = client.get(path)
        assert answer.status_code == 404, (name, path)
        assert answer.content_type == "application/problem+json", (name, path, answer.data)
        assert answer.get_json()["status"] == 404


def test_a_busy_upload_is_a_warning_and_a_503(caplog: pytest.LogCaptureFixture) -> None:
    from flask import Flask

    with Flask("t").test_request_context(), caplog.at_level(logging.WARNING), \
            pytest.raises(HTTPException) as refused:
        retry_later_without_a_traceback(UploadBusy("upload u1 is being ingested"),
                                        object="uploads/acme/claims/x.csv")
    assert refused.value.code == 503
    (record,) = [r for r in caplog.records if r.name == "upstream.http"]
    assert record.levelno == logging.WARNING and record.exc_info is None
