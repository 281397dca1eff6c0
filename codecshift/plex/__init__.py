"""Plex integration through plexapi: link a server, list sections, read files, refresh folders.

The public API is re-exported here; see docs/plex.md for how it is used.
"""

from codecshift.plex.client import (
    PlexConnection,
    PlexIdentity,
    PlexSection,
    check_connection,
    link,
    list_sections,
    normalize_url,
    open_server,
)
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
)
from codecshift.plex.media import (
    PlexMediaItem,
    SectionReader,
    items_of,
    iter_media,
    normalize_codec,
    normalize_container,
    resolve_item,
    to_summary,
)
from codecshift.plex.refresh import RefreshResult, refresh_folder
from codecshift.plex.webhooks import (
    WebhookError,
    WebhookEvent,
    parse_arr_webhook,
    parse_plex_webhook,
    plex_payload_from_multipart,
)

__all__ = [
    "PlexConfigError",
    "PlexConnection",
    "PlexError",
    "PlexIdentity",
    "PlexMediaItem",
    "PlexNotAServer",
    "PlexNotFound",
    "PlexSection",
    "PlexServerError",
    "PlexTLSError",
    "PlexUnauthorized",
    "PlexUnreachable",
    "PlexWrongServer",
    "RefreshResult",
    "SectionReader",
    "WebhookError",
    "WebhookEvent",
    "check_connection",
    "items_of",
    "iter_media",
    "link",
    "list_sections",
    "normalize_codec",
    "normalize_container",
    "normalize_url",
    "open_server",
    "parse_arr_webhook",
    "parse_plex_webhook",
    "plex_payload_from_multipart",
    "refresh_folder",
    "resolve_item",
    "to_summary",
]
