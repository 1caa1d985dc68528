"""The local stack's SMTP server: every message the alert dispatcher sends lands as an `.eml`
file in `<data dir>/mail/`, where the demo prints its path and tests parse it."""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

_counter = itertools.count(1)


class MailDir:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(  # noqa: N802 (aiosmtpd hook name)
            self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(_counter):04d}.eml"
        tmp = self.directory / f".{name}"
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.directory / name)  # readers never see half a message
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    controller = Controller(MailDir(args.dir), hostname=args.host, port=args.port)
    controller.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
