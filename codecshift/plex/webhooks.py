"""Webhook payloads from Plex, Sonarr and Radarr, parsed into what to queue.

Pure functions over the request body. A payload that cannot be read raises
WebhookError (answer 400); a well-formed event that asks for nothing (a test,
a play event, a rename) comes back with ``ignored`` set to the reason (answer
200, so the sender's "Test" button succeeds and it does not retry).

Paths are as the sender sees them. Plex names an item by rating key, not by
file, so a Plex event gives a rating key for ``codecshift.plex.resolve_item``.
Sonarr and Radarr give file paths in their own view of the disks; map them
to the library's paths with ``pathmap.to_source(path, mappings, node="sonarr")``
and mappings whose ``node`` is the sender's name (see docs/plex.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email import policy
from email.parser import BytesParser
from typing import Any

from codecshift.pathmap import is_absolute

PLEX_NEW_EVENT = "library.new"
PLEX_VIDEO_TYPES = ("movie", "episode", "show", "season")
ARR_IMPORT_EVENTS = ("Download", "Import", "Upgrade", "ImportComplete")


class WebhookError(ValueError):
    """The body is not a payload we can read at all."""


@dataclass(frozen=True)
class WebhookEvent:
    source: str  # plex | sonarr | radarr | unknown
    event: str
    paths: tuple[str, ...] = ()
    plex_rating_key: str | None = None
    plex_section_key: str | None = None
    plex_item_type: str | None = None
    plex_server: str | None = None
    title: str | None = None
    ignored: str | None = None

    @property
    def actionable(self) -> bool:
        return self.ignored is None


def _load_object(payload: str | bytes | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if isinstance(payload, Mapping):
        return payload
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(f"{what} payload is not valid JSON") from None
    if not isinstance(data, dict):
        raise WebhookError(f"{what} payload must be a JSON object")
    return data


def plex_payload_from_multipart(body: bytes, content_type: str) -> str:
    """The JSON text of the ``payload`` part of Plex's multipart/form-data body."""
    if not content_type.lower().startswith("multipart/"):
        raise WebhookError("Plex webhooks are multipart/form-data with a 'payload' part")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise WebhookError("the multipart body could not be read")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "payload":
            content = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "utf-8"
            try:
                return content.decode(charset)
            except (LookupError, UnicodeDecodeError):
                raise WebhookError("the 'payload' part is not valid text") from None
    raise WebhookError("the multipart body has no 'payload' part")


def _plex_paths(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """File paths when Plex included Media/Part in the event (it usually does not)."""
    paths = []
    for media in metadata.get("Media") or ():
        for part in (media.get("Part") or ()) if isinstance(media, Mapping) else ():
            file = part.get("file") if isinstance(part, Mapping) else None
            if isinstance(file, str) and is_absolute(file):
                paths.append(file)
    return tuple(dict.fromkeys(paths))


def parse_plex_webhook(payload: str | bytes | Mapping[str, Any], *,
                       machine_identifier: str | None = None) -> WebhookEvent:
    """Plex's webhook ``payload`` JSON: library.new for a video item is actionable.

    With ``machine_identifier`` (the linked server), events from any other
    server are ignored.
    """
    data = _load_object(payload, "Plex")
    event = str(data.get("event") or "")
    server = data.get("Server") if isinstance(data.get("Server"), Mapping) else {}
    server_id = str(server.get("uuid") or "") or None
    base = WebhookEvent(source="plex", event=event, plex_server=server_id)
    if event != PLEX_NEW_EVENT:
        return _ignored(base, f"Plex event {event or '(none)'!r} is not {PLEX_NEW_EVENT}")
    if machine_identifier and server_id != machine_identifier:
        return _ignored(base, f"from Plex server {server_id or '(unnamed)'}, not the linked one")
    metadata = data.get("Metadata")
    if not isinstance(metadata, Mapping):
        raise WebhookError("Plex library.new payload has no Metadata object")
    rating_key = str(metadata.get("ratingKey") or "").strip()
    if not rating_key.isdigit():
        raise WebhookError("Plex library.new payload has no valid Metadata.ratingKey")
    item_type = str(metadata.get("type") or "")
    section = metadata.get("librarySectionID")
    event_with_item = WebhookEvent(
        source="plex", event=event, paths=_plex_paths(metadata), plex_rating_key=rating_key,
        plex_section_key=str(section) if section not in (None, "") else None, plex_item_type=item_type,
        plex_server=server_id, title=str(metadata.get("title") or "") or None)
    if item_type not in PLEX_VIDEO_TYPES:
        return _ignored(event_with_item, f"a Plex {item_type or 'item'} has no video to convert")
    return event_with_item


def _ignored(event: WebhookEvent, reason: str) -> WebhookEvent:
    return replace(event, ignored=reason)


def _file_path(file: object, folder: object) -> str | None:
    """A file's absolute path: its 'path', else its folder joined with 'relativePath'."""
    if not isinstance(file, Mapping):
        return None
    path = file.get("path")
    if isinstance(path, str) and is_absolute(path):
        return path
    relative = file.get("relativePath")
    if isinstance(folder, str) and is_absolute(folder) and isinstance(relative, str) and relative:
        sep = "\\" if "\\" in folder and "/" not in folder else "/"
        return folder.rstrip("/\\") + sep + relative.lstrip("/\\")
    return None


def parse_arr_webhook(payload: str | bytes | Mapping[str, Any]) -> WebhookEvent:
    """Sonarr's or Radarr's webhook JSON: an import ("Download") event gives its file paths."""
    data = _load_object(payload, "Sonarr/Radarr")
    event = str(data.get("eventType") or "")
    if not event:
        raise WebhookError("Sonarr/Radarr payload has no eventType")
    if any(key in data for key in ("series", "episodeFile", "episodeFiles")):
        source = "sonarr"
    elif any(key in data for key in ("movie", "movieFile")):
        source = "radarr"
    else:
        hint = str(data.get("instanceName") or data.get("applicationName") or "").lower()
        source = "sonarr" if "sonarr" in hint else "radarr" if "radarr" in hint else "unknown"
    base = WebhookEvent(source=source, event=event)
    if event == "Test":
        return _ignored(base, "test event: the webhook reaches CodecShift")
    if event not in ARR_IMPORT_EVENTS:
        return _ignored(base, f"event {event!r} is not an import")
    if source == "sonarr" and ("episodeFile" in data or "episodeFiles" in data):
        series = data.get("series") if isinstance(data.get("series"), Mapping) else {}
        files = [data.get("episodeFile"), *(data.get("episodeFiles") or [])]
        folder, title = series.get("path"), series.get("title")
    elif source == "radarr" and "movieFile" in data:
        movie = data.get("movie") if isinstance(data.get("movie"), Mapping) else {}
        files = [data.get("movieFile")]
        folder, title = movie.get("folderPath") or movie.get("path"), movie.get("title")
    elif source == "unknown":
        return _ignored(base, "neither a Sonarr nor a Radarr payload")
    else:
        return _ignored(base, f"{source} {event} event names no file")
    paths = tuple(dict.fromkeys(p for p in (_file_path(f, folder) for f in files) if p))
    event_with_paths = WebhookEvent(source=source, event=event, paths=paths,
                                    title=str(title) if title else None)
    if not paths:
        return _ignored(event_with_paths, f"{source} {event} event names no file path")
    return event_with_paths
