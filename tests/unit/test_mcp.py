"""The MCP server, driven by the MCP SDK's own client: in process, over stdio (the
`upstream mcp` command as an assistant launches it) and over streamable HTTP with bearer
keys. Behind it the real API handler (keys, scopes, audit) on the unit-test stores."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.unit.test_api import Stores, setup
from upstream.mcp_server import ApiKeyVerifier, build_server
from upstream.services.api import ApiDeps, handle

TOOLS = {"check_payer_behavior", "list_alerts", "explain_code"}
UPSTREAM = str(Path(sys.executable).with_name("upstream"))


class InProcessApi:
    """The API handler itself, called as the HTTP function would call it."""

    def __init__(self, deps: ApiDeps) -> None:
        self.deps = deps
        self.calls: list[str] = []

    def get(self, path: str, query: dict[str, str], key: str) -> tuple[int, Any]:
        from urllib.parse import unquote

        self.calls.append(path)
        answer = handle("GET", unquote(path), query, {"Authorization": f"Bearer {key}"}, b"",
                        self.deps)
        return answer.status, answer.body


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_the_tools_are_listed_and_each_answers_under_the_key() -> None:
    deps, stores, tokens = setup()
    api = InProcessApi(deps)

    async def session() -> dict[str, Any]:
        async with Client(build_server(api, stdio_key=tokens["read"])) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            payer = structured(await client.call_tool("check_payer_behavior",
                                                      {"payer": "Slow Plan / East"}))
            alerts = structured(await client.call_tool("list_alerts", {"status": "open"}))
            codes = structured(await client.call_tool("explain_code", {"code": "CO-B7 N290"}))
            return {"tools": tools, "payer": payer, "alerts": alerts, "codes": codes}

    got = run(session())
    assert got["tools"] == TOOLS
    assert got["payer"]["found"] and got["payer"]["archetype"] == "Slow Payer"
    assert {a["alert_id"] for a in got["alerts"]["alerts"]} == {"a1", "a3"}
    assert [c["code"] for c in got["codes"]["codes"]] == ["CO-B7", "N290"]
    actions = [e["action"] for e in stores.audit["acme"]]
    assert "GET /v1/payers/<path:payer>" in actions and "GET /v1/alerts" in actions
    assert all(e["actor"].startswith("key:") for e in stores.audit["acme"])


def test_an_unknown_payer_lists_the_known_ones() -> None:
    deps, _, tokens = setup()

    async def session() -> Any:
        async with Client(build_server(InProcessApi(deps), stdio_key=tokens["read"])) as client:
            return structured(await client.call_tool("check_payer_behavior", {"payer": "Nope"}))

    got = run(session())
    assert got["found"] is False and "Cigna" in got["known_payers"]


@pytest.mark.parametrize("tool, arguments", [
    ("check_payer_behavior", {"payer": ""}), ("check_payer_behavior", {"payer": "x" * 201}),
    ("check_payer_behavior", {}), ("list_alerts", {"limit": 0}), ("list_alerts", {"limit": 500}),
    ("list_alerts", {"status": "everything"}), ("explain_code", {"code": "x" * 401}),
])
def test_bad_arguments_are_refused(tool: str, arguments: dict[str, Any]) -> None:
    deps, _, tokens = setup()

    async def session() -> Any:
        async with Client(build_server(InProcessApi(deps), stdio_key=tokens["read"])) as client:
            return await client.call_tool(tool, arguments)

    assert run(session()).is_error


@pytest.mark.parametrize("key", [None, "", "upk_nope_nope", "revoked"])
def test_no_valid_key_no_data(key: str | None) -> None:
    deps, _, tokens = setup()
    key = tokens.get(key or "", key)

    async def session() -> list[Any]:
        async with Client(build_server(InProcessApi(deps), stdio_key=key)) as client:
            return [await client.call_tool(name, args) for name, args in (
                ("check_payer_behavior", {"payer": "Aetna"}), ("list_alerts", {}),
                ("explain_code", {"code": "CO-97"}))]

    results = run(session())
    assert all(r.is_error for r in results)
    assert all("refused" in r.content[0].text or "No API key" in r.content[0].text
               for r in results)


def test_another_practices_key_sees_only_its_own() -> None:
    deps, _, tokens = setup()

    async def session() -> Any:
        async with Client(build_server(InProcessApi(deps), stdio_key=tokens["beta"])) as client:
            return structured(await client.call_tool("check_payer_behavior", {"payer": "Aetna"}))

    got = run(session())
    assert got == {"payer": "Aetna", "found": False, "as_of": None, "known_payers": []}


def test_the_http_verifier_asks_the_api_once_a_minute() -> None:
    deps, _, tokens = setup()
    api = InProcessApi(deps)
    now = [0.0]
    verifier = ApiKeyVerifier(api, clock=lambda: now[0])
    assert run(verifier.verify_token(tokens["read"])).client_id.startswith("key:")
    assert run(verifier.verify_token(tokens["read"])) is not None
    assert len(api.calls) == 1
    now[0] = 61.0
    run(verifier.verify_token(tokens["read"]))
    assert len(api.calls) == 2
    assert run(verifier.verify_token("upk_nope_nope")) is None


# --- over real transports -----------------------------------------------------------------------

@pytest.fixture()
def http_api() -> Iterator[tuple[str, Stores, dict[str, str]]]:
    """The API handler served over HTTP on a free port, as `upstream mcp` reaches it."""
    deps, stores, tokens = setup()

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        answer = handle(request.method, request.path, dict(request.args),
                        dict(request.headers), request.get_data(), deps)
        return Response(json.dumps(answer.body), status=answer.status,
                        content_type=answer.content_type)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", stores, tokens
    finally:
        server.shutdown()


def test_upstream_mcp_over_stdio(http_api: tuple[str, Stores, dict[str, str]]) -> None:
    url, stores, tokens = http_api
    params = StdioServerParameters(
        command=UPSTREAM, args=["mcp", "--transport", "stdio", "--api-url", url],
        env={**os.environ, "UPSTREAM_API_KEY": tokens["read"]})

    async def session() -> dict[str, Any]:
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            payer = structured(await client.call_tool("check_payer_behavior",
                                                      {"payer": "Slow Plan / East"}))
            return {"tools": tools, "payer": payer}

    got = run(session())
    assert got["tools"] == TOOLS and got["payer"]["archetype"] == "Slow Payer"
    assert stores.audit["acme"][-1]["action"] == "GET /v1/payers/<path:payer>"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_upstream_mcp_over_streamable_http_with_bearer_keys(
        http_api: tuple[str, Stores, dict[str, str]]) -> None:
    url, _, tokens = http_api
    port = free_port()
    process = subprocess.Popen(
        [UPSTREAM, "mcp", "--transport", "streamable-http", "--port", str(port),
         "--api-url", url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    endpoint = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)

        async def session(key: str) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
                    Client(streamable_http_client(endpoint, http_client=http)) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                alerts = structured(await client.call_tool("list_alerts", {"payer": "Aetna"}))
                return {"tools": tools, "alerts": alerts}

        got = run(session(tokens["read"]))
        assert got["tools"] == TOOLS and got["alerts"]["count"] == 1
        with pytest.raises(Exception):  # noqa: B017 - the SDK's error for a 401
            run(session("upk_nope_nope"))
        raw = httpx2.post(endpoint, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          timeout=10)
        assert raw.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
