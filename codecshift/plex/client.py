"""Connecting to a Plex server through plexapi: link, identity check, sections.

Every call goes through :func:`open_server`, which checks that a Plex server
answers (and, once linked, that it is still the same server by its machine
identifier) and turns every failure into a typed :class:`PlexError` whose
message never contains the token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import requests
import urllib3
from plexapi import exceptions as plex_exc
from plexapi.server import PlexServer

from codecshift.plex.errors import (
    PlexConfigError,
    PlexError,
    PlexNotAServer,
    PlexNotFound,
    PlexServerError,
    PlexTLSError,
    PlexUnauthorized,
    PlexUnreachable,
    PlexWrongServer,
    safe_url,
    scrub,
)

SECTION_TYPES = ("movie", "show")
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class PlexConnection:
    """Where and how to reach the linked server. The token never appears in repr()."""

    url: str
    token: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    verify_tls: bool = True
    machine_identifier: str | None = None  # once linked: refuse any other server at this URL


@dataclass(frozen=True)
class PlexIdentity:
    name: str
    machine_identifier: str
    version: str


@dataclass(frozen=True)
class PlexSection:
    """A movie or TV section as CodecShift lists it; locations are Plex's paths."""

    key: str
    title: str
    type: str  # movie | show
    locations: tuple[str, ...]


class _Session(requests.Session):
    """A requests session that remembers the last HTTP status, for precise errors."""

    last_status: int | None = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.last_status = None
        response = super().send(request, **kwargs)
        self.last_status = response.status_code
        return response

    def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        """Keep verification off when chosen: requests lets REQUESTS_CA_BUNDLE override it otherwise."""
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is False:
            settings["verify"] = False
        return settings


def normalize_url(url: str) -> str:
    """Check a base URL typed by a user; the token belongs in its own field, never here."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise PlexConfigError("the Plex URL is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlexConfigError("the Plex URL must be http:// or https:// with a host, "
                              "e.g. http://192.168.1.10:32400")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise PlexConfigError("give the Plex URL without credentials or query (the token has its own field)")
    return url.rstrip("/")


def _check_token(token: str) -> str:
    token = (token or "").strip()
    if not token:
        raise PlexConfigError("a Plex token is required")
    if any(ch.isspace() for ch in token) or not token.isprintable():
        raise PlexConfigError("the Plex token contains spaces or control characters")
    return token


@contextlib.contextmanager
def translate_errors(conn: PlexConnection, session: _Session | None, what: str,
                     malformed: tuple[type[Exception], ...] = (ParseError,)) -> Iterator[None]:
    """Turn requests/plexapi failures while doing ``what`` into PlexError subclasses.

    ``malformed`` are the exceptions that mean the reply was not Plex's XML.
    """
    where = safe_url(conn.url)
    try:
        yield
    except PlexError:
        raise
    except requests.exceptions.SSLError:
        raise PlexTLSError(f"TLS check failed for Plex at {where} while {what}: fix the certificate or "
                           f"turn off TLS verification for this server") from None
    except requests.exceptions.Timeout:
        raise PlexUnreachable(f"Plex at {where} did not answer within {conn.timeout:g} s "
                              f"while {what}") from None
    except requests.exceptions.ConnectionError:
        raise PlexUnreachable(f"cannot connect to Plex at {where} while {what}: check the URL and "
                              f"that the server is running") from None
    except requests.exceptions.RequestException as exc:
        raise PlexUnreachable(scrub(f"request to Plex at {where} failed while {what} "
                                    f"({type(exc).__name__})", conn.token)) from None
    except plex_exc.Unauthorized:
        raise PlexUnauthorized(f"Plex at {where} refused the token (HTTP 401) while {what}: "
                               f"check the token", status=401) from None
    except plex_exc.NotFound:
        status = session.last_status if session else None
        raise PlexNotFound(f"not found on Plex at {where} while {what}"
                           + (f" (HTTP {status})" if status == 404 else ""), status=status) from None
    except plex_exc.BadRequest:
        status = session.last_status if session else None
        if status is None or status < 400:  # plexapi refused the request itself, not the server
            raise PlexServerError(f"Plex request refused while {what}", status=None) from None
        raise PlexServerError(f"Plex at {where} answered HTTP {status} while {what}", status=status) from None
    except malformed:
        raise PlexNotAServer(f"{where} answered, but not like a Plex Media Server while {what}: "
                             f"check the URL and port (usually 32400)") from None


def open_server(conn: PlexConnection) -> PlexServer:
    """Connect, check that this is a Plex server (and the linked one), return plexapi's server."""
    url = normalize_url(conn.url)
    token = _check_token(conn.token)
    session = _Session()
    session.verify = conn.verify_tls
    where = safe_url(url)
    with translate_errors(conn, session, "connecting", (ParseError, AttributeError, TypeError, ValueError)):
        try:
            with _quiet_insecure(conn.verify_tls):
                server = PlexServer(url, token, session=session, timeout=conn.timeout)
        except plex_exc.NotFound:
            raise PlexNotAServer(f"{where} answered HTTP 404 for the server root: this is not a Plex "
                                 f"Media Server's URL (check host, port and path)", status=404) from None
    data = server._data
    machine_id = getattr(server, "machineIdentifier", None)
    if data is None or data.tag != "MediaContainer" or not machine_id:
        raise PlexNotAServer(f"{where} answered, but not like a Plex Media Server: check the URL and "
                             f"port (usually 32400)")
    if conn.machine_identifier and machine_id != conn.machine_identifier:
        raise PlexWrongServer(f"the Plex server at {where} is not the linked one (machine identifier "
                              f"{machine_id}, expected {conn.machine_identifier}); link it again if "
                              f"the server was replaced")
    return server


@contextlib.contextmanager
def _quiet_insecure(verify_tls: bool) -> Iterator[None]:
    """With verification off by choice, urllib3's per-request warning is noise."""
    if verify_tls:
        yield
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        yield


def identity_of(server: PlexServer) -> PlexIdentity:
    return PlexIdentity(name=server.friendlyName or "", machine_identifier=server.machineIdentifier,
                        version=server.version or "")


def _sections(server: PlexServer, conn: PlexConnection) -> list[PlexSection]:
    session = server._session if isinstance(server._session, _Session) else None
    with translate_errors(conn, session, "listing library sections"), _quiet_insecure(conn.verify_tls):
        result = []
        for section in server.library.sections():
            if section.type not in SECTION_TYPES:
                continue
            result.append(PlexSection(key=str(section.key), title=section.title or "", type=section.type,
                                      locations=tuple(section.locations)))
        return result


def link(url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT, verify_tls: bool = True) -> PlexIdentity:
    """Check a URL and token before anything is saved; return the server's identity.

    Besides the server root, the library sections are read, so a token that
    reaches the server but not its libraries is refused now rather than at
    the first scan.
    """
    conn = PlexConnection(normalize_url(url), _check_token(token), timeout=timeout, verify_tls=verify_tls)
    server = open_server(conn)
    _sections(server, conn)
    return identity_of(server)


def check_connection(conn: PlexConnection) -> PlexIdentity:
    """Check the linked server still answers as itself with this token."""
    return identity_of(open_server(conn))


def list_sections(conn: PlexConnection) -> list[PlexSection]:
    """The server's movie and TV sections (others, such as music, are left out)."""
    return _sections(open_server(conn), conn)
