"""`upstream mcp`: a read-only Model Context Protocol server for AI assistants.

Three tools: `check_payer_behavior(payer)` (the payer's fingerprint, archetype and evidence),
`list_alerts(status, payer, limit)` and `explain_code(code)` (the denial-code catalogue).

Why a client of the JSON API rather than of Firestore: the API already knows whose key it
is, what it may read, and writes the access audit (Contract 6). Every practice-data tool
call is one API call under the practice's own key, audited as `GET /v1/…` by `key:<id>`;
the server holds no credentials of its own. `explain_code` reads no practice data (the
catalogue is public knowledge): its key is checked with the API like the others' (that check
is the audited read), and the call is logged without its argument.

Transports: stdio (the key from `UPSTREAM_API_KEY`, one practice per process, as desktop
assistants launch it) and streamable HTTP (each request's `Authorization: Bearer <key>`,
checked against the API before any tool runs; the answer is remembered for a minute).
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from upstream.domain.codes.catalogue import explain
from upstream.logs import get_logger

log = get_logger(__name__)
API_TIMEOUT_SECONDS = 15
VERIFIED_SECONDS = 60.0
MAX_CODES = 20


class ApiReader(Protocol):
    def get(self, path: str, query: dict[str, str], key: str) -> tuple[int, Any]: ...


@dataclass(frozen=True)
class HttpApi:
    """The practice's Upstream API over HTTPS (or the local stack's over HTTP)."""

    base_url: str

    def get(self, path: str, query: dict[str, str], key: str) -> tuple[int, Any]:
        url = self.base_url.rstrip("/") + path + (
            "?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}",
                                                       "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT_SECONDS) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {}
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise ToolError(f"The Upstream API cannot be reached: {exc}") from exc


@dataclass
class ApiKeyVerifier:
    """A bearer key is valid when the API accepts it for a read (HTTP transport)."""

    api: ApiReader
    clock: Any = time.monotonic
    seen: dict[str, tuple[float, bool]] = field(default_factory=dict)

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self.seen.get(digest)
        if cached is None or self.clock() - cached[0] > VERIFIED_SECONDS:
            # The API call blocks: off the event loop, so other sessions are served meanwhile.
            status, _ = await anyio.to_thread.run_sync(
                self.api.get, "/v1/alerts", {"page_size": "1"}, token)
            cached = (self.clock(), status == 200)
            self.seen[digest] = cached
        if not cached[1]:
            return None
        return AccessToken(token=token, client_id=_key_id(token), scopes=["read"])


def _key_id(token: str) -> str:
    """`upk_<id>_<secret>` → `key:<id>` (never the secret)."""
    parts = token.split("_")
    return f"key:{parts[1]}" if len(parts) >= 3 and parts[0] == "upk" else "key:unknown"


def _read(api: ApiReader, key: str | None, path: str, query: dict[str, str]) -> Any:
    if not key:
        raise ToolError("No API key: set UPSTREAM_API_KEY (stdio) or send a bearer key (HTTP).")
    status, body = api.get(path, query, key)
    if status == 401:
        raise ToolError("The Upstream API refused the API key.")
    if status == 403:
        raise ToolError("This API key may not read that.")
    if status >= 400 and status != 404:
        detail = body.get("detail") if isinstance(body, dict) else None
        raise ToolError(f"The Upstream API answered {status}: {detail or 'error'}")
    return status, body


def build_server(api: ApiReader, stdio_key: str | None = None,
                 public_url: str | None = None, api_url: str | None = None) -> MCPServer:
    """The server. With `public_url` it authenticates HTTP requests by bearer key."""
    auth = None
    verifier = None
    if public_url:
        auth = AuthSettings(issuer_url=api_url or public_url, resource_server_url=public_url,
                            required_scopes=["read"])
        verifier = ApiKeyVerifier(api)
    server = MCPServer(
        name="upstream", title="Upstream payer intelligence",
        instructions="Read-only tools over one practice's Upstream data: how each payer "
                     "behaves, the open alerts, and what denial codes mean.",
        token_verifier=verifier, auth=auth)

    stdio_check = ApiKeyVerifier(api)

    def key() -> str | None:
        token = get_access_token()
        return token.token if token is not None else stdio_key

    async def verified() -> str:
        """HTTP requests arrive verified by the bearer middleware; a stdio key is checked
        against the API the same way (once a minute) before a tool runs."""
        found = key()
        if not found:
            raise ToolError("No API key: set UPSTREAM_API_KEY (stdio) or send a bearer key "
                            "(HTTP).")
        if get_access_token() is None and await stdio_check.verify_token(found) is None:
            raise ToolError("The Upstream API refused the API key.")
        return found

    @server.tool(description="How a payer treats the practice: denial rate and trend, days "
                             "to payment and trend, price against the practice's norm, "
                             "denial-reason shift, and its archetype with the evidence.")
    def check_payer_behavior(payer: str = Field(min_length=1, max_length=200)) -> dict[str, Any]:
        status, body = _read(api, key(), "/v1/payers/" + urllib.parse.quote(payer, safe=""),
                             {})
        if status == 404:
            _, listing = _read(api, key(), "/v1/payers", {})
            known = sorted(p["payer"] for p in listing.get("payers") or [])
            return {"payer": payer, "found": False, "as_of": listing.get("as_of"),
                    "known_payers": known}
        return {"found": True, **body}

    @server.tool(description="The practice's alerts, newest first: denial-rate drift, denied "
                             "dollars, payment delays, underpayment, authorizations.")
    def list_alerts(status: Literal["open", "acknowledged", "resolved", "noise"] = "open",
                    payer: str | None = Field(None, min_length=1, max_length=100),
                    limit: int = Field(20, ge=1, le=200)) -> dict[str, Any]:
        query = {"status": status, "page_size": str(limit)}
        if payer:
            query["payer"] = payer
        _, body = _read(api, key(), "/v1/alerts", query)
        alerts = [{k: a.get(k) for k in ("alert_id", "type", "payer", "scope", "severity",
                                         "status", "title", "summary", "created_at")}
                  for a in body.get("alerts") or []]
        return {"alerts": alerts, "count": len(alerts)}

    @server.tool(description="What a claim adjustment reason code (CO-97, 97, CO-B7) or remark "
                             "code (N290, MA130) means, what to do about it, and the rule "
                             "behind it. Several codes may be given, separated by spaces.")
    async def explain_code(code: str = Field(min_length=1, max_length=400)) -> dict[str, Any]:
        actor = _key_id(await verified())
        codes = code.replace(",", " ").split()[:MAX_CODES]
        log.info("mcp explain_code", extra={"codes": len(codes), "actor": actor})
        return {"codes": [explain(c) for c in codes]}

    del check_payer_behavior, list_alerts, explain_code  # registered on the server
    return server
