"""The local stack's stand-in for Cloud Storage's resumable upload sessions (the XML API's
`POST` with `x-goog-resumable: start`, then `PUT`s with `Content-Range`), which
gcp-storage-emulator does not offer for signed URLs. The browser sends a large file in
chunks; a chunk lost to a dropped connection is asked about (`bytes */total`) and sent again
from where the session says it stopped, instead of restarting 100 MB from byte zero.

The rules are Cloud Storage's, so the page's script is proven against what production does:
- every chunk but the last is a multiple of 256 KiB;
- `308` with `Range: bytes=0-N` means "received up to N, go on"; `200` means the object is
  stored; a chunk that overlaps what was received is accepted and its known part skipped
  (a retry of a chunk whose answer was lost), a gap is refused;
- the session is bound to the one object name, content type and size range the signed URL
  allowed; over that range it is refused and forgotten;
- the session id is the only credential for its chunks (as Cloud Storage's `upload_id`).
Sessions live in this process and its temporary directory: a stack restart forgets them
(Cloud Storage keeps one a week); the page then starts the file again.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from upstream.adapters.signed_urls import CHUNK_GRANULE

_RANGE = re.compile(r"^bytes (?:(?P<first>\d{1,15})-(?P<last>\d{1,15})|\*)/(?P<total>\d{1,15}|\*)$")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int  # 200 stored, 308 go on, 400 refused, 404 no such session, 502 store failed
    received: int = 0  # bytes held, for the `Range` header of a 308
    reason: str = ""


@dataclass(slots=True)
class _Session:
    name: str
    content_type: str
    limit: int
    path: Path
    received: int = 0
    done: bool = False


class ResumableSessions:
    """Sessions by id; `store(name, content_type, path)` puts a finished file in the bucket
    and says whether it worked (a failure keeps the session, so the last chunk can be sent
    again)."""

    def __init__(self, store: Callable[[str, str, Path], bool],
                 directory: Path | None = None) -> None:
        self._store = store
        self._dir = directory or Path(tempfile.mkdtemp(prefix="upstream-resumable-"))
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def start(self, name: str, content_type: str, limit: int) -> str:
        session_id = secrets.token_urlsafe(24)
        path = self._dir / session_id
        path.touch()
        with self._lock:
            self._sessions[session_id] = _Session(name, content_type, limit, path)
        return session_id

    def name_of(self, session_id: str) -> str | None:
        with self._lock:
            found = self._sessions.get(session_id)
        return found.name if found else None

    def put(self, session_id: str, content_range: str, body: bytes) -> Answer:
        with self._lock:  # one chunk of a session at a time, as Cloud Storage serialises them
            session = self._sessions.get(session_id)
            if session is None:
                return Answer(404, reason="no such upload session")
            return self._put(session_id, session, content_range, body)

    def _put(self, session_id: str, session: _Session, content_range: str,
             body: bytes) -> Answer:
        if session.done:
            return Answer(200, session.received)
        match = _RANGE.match(content_range.strip())
        if match is None:
            return Answer(400, session.received, "Content-Range is not bytes a-b/total")
        total = None if match["total"] == "*" else int(match["total"])
        if total is not None and total > session.limit:
            self._forget(session_id, session)
            return Answer(400, reason="the file is larger than the signed length range")
        if match["first"] is None:  # a status query
            if body:
                return Answer(400, session.received, "a status query carries no body")
            return self._finish(session, total) if total == session.received else \
                Answer(308, session.received)
        first, last = int(match["first"]), int(match["last"])
        if last < first or len(body) != last - first + 1:
            return Answer(400, session.received, "the chunk's length differs from its range")
        if first > session.received:
            return Answer(400, session.received, "the chunk leaves a gap")
        final = total is not None and last + 1 == total
        if not final and len(body) % CHUNK_GRANULE:
            return Answer(400, session.received, "a chunk but the last is not a multiple of "
                                                 "256 KiB")
        if total is not None and last + 1 > total:
            return Answer(400, session.received, "the chunk ends past the total")
        if last + 1 > session.limit:
            self._forget(session_id, session)
            return Answer(400, reason="the file is larger than the signed length range")
        fresh = body[session.received - first:]
        if fresh:
            with session.path.open("ab") as held:
                held.write(fresh)
                held.flush()
                os.fsync(held.fileno())
            session.received += len(fresh)
        return self._finish(session, total) if final else Answer(308, session.received)

    def _finish(self, session: _Session, total: int | None) -> Answer:
        if total is None or session.received != total:
            return Answer(308, session.received)
        if not self._store(session.name, session.content_type, session.path):
            return Answer(502, session.received, "the bucket did not take the file")
        session.done = True
        session.path.unlink(missing_ok=True)
        return Answer(200, session.received)

    def _forget(self, session_id: str, session: _Session) -> None:
        self._sessions.pop(session_id, None)
        session.path.unlink(missing_ok=True)
