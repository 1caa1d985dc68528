"""The senders against real servers on loopback: an SMTP server (aiosmtpd) that receives and
parses the message, and an HTTP receiver for Slack and webhook posts that can answer 429,
500 or hang. No emulator needed."""

from __future__ import annotations

import email
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.unit.test_notify import alert
from upstream.adapters.channels import DeliveryFailed, HttpSender, SmtpSender, SmtpSettings
from upstream.domain.notify.render import email_message


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    def __init__(self, refuse: bool = False) -> None:
        self.messages: list[bytes] = []
        self.refuse = refuse

    async def handle_RCPT(  # noqa: N802 (aiosmtpd hook name)
            self, server: Any, session: Any, envelope: Any, address: str,
            options: Any) -> str:
        if self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd hook name)
            self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def sender(port: int) -> SmtpSender:
    return SmtpSender(SmtpSettings("127.0.0.1", port, "alerts@upstream.test", starttls=False),
                      timeout=3)


def test_an_email_lands_and_parses(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    sender(port).send(email_message(alert(), "alerts@upstream.test", ["rcm@example.com"],
                                    "https://u.test", "Acme ABA"))
    (raw,) = inbox.messages
    parsed = email.message_from_bytes(raw)
    assert parsed["To"] == "rcm@example.com" and "denial rate" in parsed["Subject"]
    assert {p.get_content_type() for p in parsed.walk()} >= {"text/plain", "text/html"}


def test_smtp_down_is_retryable_and_a_refused_recipient_is_not(smtp: tuple[Inbox, int]) -> None:
    message = email_message(alert(), "alerts@upstream.test", ["rcm@example.com"], "u", "P")
    with pytest.raises(DeliveryFailed) as down:
        sender(free_port()).send(message)
    assert down.value.retryable
    inbox, port = smtp
    inbox.refuse = True
    with pytest.raises(DeliveryFailed) as refused:
        sender(port).send(message)
    assert not refused.value.retryable and "refused" in refused.value.reason


def test_starttls_required_but_not_offered_is_a_clear_failure(smtp: tuple[Inbox, int]) -> None:
    _, port = smtp
    strict = SmtpSender(SmtpSettings("127.0.0.1", port, "a@upstream.test", starttls=True),
                        timeout=3)
    with pytest.raises(DeliveryFailed) as failed:
        strict.send(email_message(alert(), "a@upstream.test", ["b@example.com"], "u", "P"))
    assert "STARTTLS" in failed.value.reason and not failed.value.retryable


class Receiver:
    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.hang = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.received.append((dict(request.headers), request.get_data()))
        if self.hang:
            time.sleep(self.hang)
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return Response("ok", status=status, headers=headers)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app, f"http://127.0.0.1:{port}/hook"
    server.shutdown()


def test_http_posts_and_their_failures(receiver: tuple[Receiver, str]) -> None:
    app, url = receiver
    http = HttpSender(timeout=1.0)
    http.post_json(url, {"text": "hello"})
    assert app.received[0][1] == b'{"text": "hello"}'
    app.answers = [(429, {"Retry-After": "7"}), (500, {}), (400, {}), (301, {"Location": "/x"})]
    outcomes = []
    for _ in range(4):
        with pytest.raises(DeliveryFailed) as failed:
            http.post_json(url, {})
        outcomes.append((failed.value.reason, failed.value.retryable, failed.value.retry_after))
    assert outcomes == [("HTTP 429", True, 7.0), ("HTTP 500", True, None),
                        ("HTTP 400", False, None), ("HTTP 301", False, None)]


def test_a_target_that_hangs_times_out(receiver: tuple[Receiver, str]) -> None:
    app, url = receiver
    app.hang = 3.0
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as failed:
        HttpSender(timeout=0.5).post(url, b"{}", {})
    assert failed.value.reason == "timed out" and failed.value.retryable
    assert time.monotonic() - started < 2.5
