"""`LeanUnary`, the hand-built RPC on the webhook's path: it must behave like the generated
client's method it replaces (retry on the same codes, the same exceptions, the routing header)
whatever the channel answers. The emulator tests prove the wire format."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type

from upstream.adapters.lean_grpc import LeanUnary


class _RpcFailure(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """What a sync unary call raises: an RpcError that is also the Call, with a code."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return f"the server said {self._code.name}"

    def initial_metadata(self) -> Any:
        return ()

    def trailing_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> Any:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


class _Channel:
    """Answers each call with the next item: an exception to raise or a response."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def unary_unary(self, method: str, request_serializer: Any,
                    response_deserializer: Any) -> Any:
        self.method = method

        def call(request: Any, timeout: float, metadata: Any) -> Any:
            self.calls.append({"request": request, "timeout": timeout, "metadata": metadata})
            answer = self.answers.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return call


class _Message:
    SerializeToString = staticmethod(lambda message: b"")
    FromString = staticmethod(lambda data: data)


FAST_RETRY = Retry(initial=0.001, maximum=0.002, deadline=5.0,
                   predicate=if_exception_type(gexc.ServiceUnavailable))


def _lean(channel: _Channel) -> LeanUnary:
    return LeanUnary(channel, "/svc/Method", _Message, _Message, FAST_RETRY, 7.0,
                     (("google-cloud-resource-prefix", "projects/p/databases/(default)"),))


def test_an_answer_comes_back_with_the_routing_header_and_the_clients_metadata() -> None:
    channel = _Channel("answer")
    assert _lean(channel)("request", (("database", "projects/p/databases/(default)"),)) \
        == "answer"
    [call] = channel.calls
    assert channel.method == "/svc/Method" and call["timeout"] == 7.0
    assert call["metadata"] == (
        ("google-cloud-resource-prefix", "projects/p/databases/(default)"),
        ("x-goog-request-params", "database=projects/p/databases/%28default%29"))


def test_a_retryable_code_is_retried_like_the_generated_client() -> None:
    channel = _Channel(_RpcFailure(grpc.StatusCode.UNAVAILABLE),
                       _RpcFailure(grpc.StatusCode.UNAVAILABLE), "answer")
    assert _lean(channel)("request", ()) == "answer"
    assert len(channel.calls) == 3


@pytest.mark.parametrize(("code", "raised"), [
    (grpc.StatusCode.ALREADY_EXISTS, gexc.Conflict),
    (grpc.StatusCode.NOT_FOUND, gexc.NotFound),
    (grpc.StatusCode.PERMISSION_DENIED, gexc.PermissionDenied),
    (grpc.StatusCode.INVALID_ARGUMENT, gexc.InvalidArgument),
])
def test_other_codes_are_raised_once_as_google_exceptions(code: grpc.StatusCode,
                                                          raised: type[Exception]) -> None:
    channel = _Channel(_RpcFailure(code), "never")
    with pytest.raises(raised):
        _lean(channel)("request", ())
    assert len(channel.calls) == 1


def test_an_outage_longer_than_the_deadline_ends_as_a_retry_error() -> None:
    short = Retry(initial=0.001, maximum=0.002, deadline=0.05,
                  predicate=if_exception_type(gexc.ServiceUnavailable))
    channel = _Channel(*[_RpcFailure(grpc.StatusCode.UNAVAILABLE)] * 10_000)
    lean = LeanUnary(channel, "/svc/Method", _Message, _Message, short, 1.0)
    with pytest.raises(gexc.RetryError):
        lean("request", ())
