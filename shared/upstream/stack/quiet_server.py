"""The stand-ins' HTTP server (fake athenaOne, the local OpenID Connect provider): werkzeug,
threaded, and without an access log, because their request lines carry what must not be
logged (patient ids in athenaOne's paths, one-time codes in a sign-in's callback)."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def server(app: Any, host: str, port: int) -> Any:
    """A server not yet started (`serve_forever()` runs it; port 0 picks a free one)."""
    return make_server(host, port, app, threaded=True, request_handler=_QuietHandler)


def serve(app: Any, host: str, port: int) -> Any:
    """A started server on a daemon thread; `.shutdown()` stops it."""
    started = server(app, host, port)
    threading.Thread(target=started.serve_forever, daemon=True).start()
    return started
