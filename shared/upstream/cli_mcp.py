"""`upstream mcp`: the read-only MCP server for AI assistants (`mcp_server.py`)."""

from __future__ import annotations

import os

import click

TRANSPORTS = click.Choice(["stdio", "streamable-http"])


@click.command("mcp")
@click.option("--transport", type=TRANSPORTS, default="stdio", show_default=True)
@click.option("--api-url", envvar="UPSTREAM_API_URL", required=True,
              help="The practice's Upstream API (default $UPSTREAM_API_URL).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--public-url", default=None,
              help="The URL clients reach this server at (HTTP; default http://HOST:PORT/mcp).")
def mcp(transport: str, api_url: str, host: str, port: int, public_url: str | None) -> None:
    """Serve check_payer_behavior, list_alerts and explain_code over MCP. stdio reads the
    API key from $UPSTREAM_API_KEY; streamable HTTP takes each client's bearer key."""
    from upstream.mcp_server import HttpApi, build_server

    api = HttpApi(api_url)
    if transport == "stdio":
        key = os.environ.get("UPSTREAM_API_KEY")
        if not key:
            raise click.ClickException("set UPSTREAM_API_KEY to the practice's read key")
        build_server(api, stdio_key=key).run("stdio")
        return
    url = public_url or f"http://{host}:{port}/mcp"
    build_server(api, public_url=url, api_url=api_url).run(
        "streamable-http", host=host, port=port)


def register(main: click.Group) -> None:
    main.add_command(mcp)
