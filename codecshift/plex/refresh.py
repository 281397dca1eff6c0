"""Partial refresh: ask Plex to rescan only the folder whose file was replaced.

A Plex outage must never fail or hold up a transcode, so this never raises:
it retries temporary failures (no connection, timeouts, HTTP 5xx/429) with a
growing pause, stops at a bounded total time, and returns a RefreshResult the
caller records. Permanent failures (wrong token, unknown section, another
server at the URL) are not retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from codecshift.plex.client import PlexConnection, _Session, open_server, translate_errors
from codecshift.plex.errors import PlexError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshResult:
    """What happened; ``error`` is safe to show and store (never holds the token)."""

    ok: bool
    section_key: str
    folder: str
    attempts: int
    elapsed: float
    error: str | None = None
    error_kind: str | None = None


def refresh_folder(conn: PlexConnection, section_key: str | int, folder: str, *, attempts: int = 4,
                   deadline: float = 30.0, backoff: float = 1.0,
                   sleep: Callable[[float], None] = time.sleep) -> RefreshResult:
    """Ask Plex to scan ``folder`` (Plex's path) of section ``section_key``.

    ``attempts`` bounds the tries, ``deadline`` the total seconds spent, tries
    and pauses included: each try's timeout is cut to the time left. The pause
    after try n is ``backoff * 2**(n-1)`` seconds.
    """
    key = str(section_key).strip()
    started = time.monotonic()
    if not key.isdigit():
        return RefreshResult(False, key, folder, 0, 0.0, error=f"invalid Plex section key {key!r}",
                             error_kind="config")
    error: PlexError | None = None
    tries = 0
    while tries < max(1, attempts):
        left = deadline - (time.monotonic() - started)
        if left <= 0:
            break
        tries += 1
        try:
            # Two requests per try (server root, then refresh): each gets half the time left.
            _refresh_once(replace(conn, timeout=max(0.1, min(conn.timeout, left / 2))), key, folder)
        except PlexError as exc:
            error = exc
            log.warning("Plex refresh of %s (section %s) failed, try %d: %s", folder, key, tries, exc)
            pause = backoff * 2 ** (tries - 1)
            if not exc.temporary or tries >= attempts or time.monotonic() - started + pause >= deadline:
                break
            sleep(pause)
            continue
        return RefreshResult(True, key, folder, tries, time.monotonic() - started)
    message = error.message if error else f"no time left within {deadline:g} s"
    return RefreshResult(False, key, folder, tries, time.monotonic() - started,
                         error=message, error_kind=error.kind if error else "timeout")


def _refresh_once(conn: PlexConnection, section_key: str, folder: str) -> None:
    server = open_server(conn)
    session = server._session if isinstance(server._session, _Session) else None
    with translate_errors(conn, session, f"asking section {section_key} to rescan {folder}"):
        server.query(f"/library/sections/{section_key}/refresh", params={"path": folder})
