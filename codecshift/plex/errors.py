"""Typed Plex errors with messages safe to show: they never carry the token.

plexapi's own exception texts include the request URL and the server's reply;
we never pass them through. Every message is built here from the base URL
(stripped of credentials and query) and an HTTP status, and is scrubbed of
the token once more as a last guard.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class PlexError(Exception):
    """Base of every Plex failure. ``temporary`` says whether retrying may help."""

    kind = "error"
    temporary = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class PlexConfigError(PlexError):
    """The URL or token given cannot be used at all (before contacting anything)."""

    kind = "config"


class PlexUnauthorized(PlexError):
    """The server refused the token (HTTP 401)."""

    kind = "unauthorized"


class PlexUnreachable(PlexError):
    """No answer: connection refused, DNS failure, timeout."""

    kind = "unreachable"
    temporary = True


class PlexTLSError(PlexError):
    """The TLS handshake or certificate check failed."""

    kind = "tls"


class PlexNotAServer(PlexError):
    """Something answered, but it is not a Plex Media Server (wrong URL or port)."""

    kind = "not_plex"


class PlexWrongServer(PlexError):
    """A Plex server answered, but not the one that was linked."""

    kind = "wrong_server"


class PlexNotFound(PlexError):
    """The section or item asked for does not exist on the server."""

    kind = "not_found"


class PlexServerError(PlexError):
    """The server answered with an error status; 5xx and 429 are temporary."""

    kind = "server_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.temporary = status is not None and (status >= 500 or status == 429)


def safe_url(url: str) -> str:
    """The URL without user info, query or fragment, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub(text: str, token: str) -> str:
    """Remove the token from a text, whatever produced it."""
    return text.replace(token, "***") if token else text
