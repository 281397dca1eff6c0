"""Webhooks from Plex (library.new), Sonarr and Radarr (imports): queue the new file at once.

The request only finds the library and hands the work to the control worker
(which resolves Plex's item, probes when the sender gave no metadata, decides
and creates the job), answering 202. Events that ask for nothing, including
the senders' Test buttons, are answered 200 with the reason, so senders do not
retry; a body that cannot be read is a 400. These routes take a key of the
``webhook`` role (or admin) as X-API-Key, as the password of HTTP basic auth,
or as an ``apikey`` query argument, since Plex cannot send headers.
"""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify, request
from sqlalchemy import select

from codecshift import settings_store
from codecshift.models import Library
from codecshift.plex import (
    WebhookError,
    WebhookEvent,
    parse_arr_webhook,
    parse_plex_webhook,
    plex_payload_from_multipart,
)
from codecshift.services import plex_link
from tasks import names
from web.api import api_blueprint as bp
from web.api.errors import ApiError
from web.api.publishing import enqueue
from web.api.routing import api_route
from web.extensions import db

RESPONSES = {200: "Ignored, with the reason (a test, another event, a file outside every library)",
             400: "The body cannot be read", 413: "The body is too large",
             503: "The broker could not take the work"}
# Plex's multipart body carries the item's poster as a JPEG beside the JSON payload (a few
# hundred KB, more for large artwork), so this route alone accepts more than the app's limit.
PLEX_WEBHOOK_MAX_BYTES = 16 * 1024 * 1024


def _ignored(reason: str, **extra: Any) -> Any:
    return jsonify({"ignored": True, "reason": reason, **extra}), 200


def _queue(library: Library, paths: list[str], rating_key: str | None, source: str) -> None:
    if not enqueue(names.PLEX_INGEST, [library.id, paths, rating_key, source]):
        raise ApiError(503, "broker_unavailable", "the control worker's queue could not be reached; "
                       "the file will be found by the next scan")


def _unsafe(path: str) -> bool:
    return ".." in re.split(r"[\\/]", path) or "\x00" in path


@api_route(bp, "/webhooks/plex", ("POST",), summary="Plex webhook: queue what library.new announces",
           role="webhook", tag="webhooks", status=202, responses=RESPONSES)
def plex_webhook() -> Any:
    """Plex posts multipart/form-data with a JSON ``payload`` part (a JSON body is accepted too).
    Only library.new for a movie, episode, show or season of a managed section, from the linked
    server, is acted on; the files are found through Plex by the item's rating key."""
    request.max_content_length = PLEX_WEBHOOK_MAX_BYTES
    session = db()
    values = settings_store.load_all(session)
    body = request.get_data(cache=True)
    content_type = request.headers.get("Content-Type", "")
    try:
        payload = plex_payload_from_multipart(body, content_type) if content_type.lower().startswith(
            "multipart/") else body
        event = parse_plex_webhook(payload, machine_identifier=values["plex_machine_identifier"] or None)
    except WebhookError as exc:
        raise ApiError(400, "invalid_webhook", str(exc)) from None
    if not event.actionable:
        return _ignored(event.ignored or "ignored", event=event.event)
    if not plex_link.link_state(values).linked:
        return _ignored("no Plex server is linked", event=event.event)
    library = plex_link.library_for_section(session, event.plex_section_key)
    if library is None:
        return _ignored(f"Plex section {event.plex_section_key or '(none)'} is not managed by CodecShift",
                        event=event.event)
    if not library.enabled:
        return _ignored(f"library {library.name!r} is disabled", event=event.event)
    paths = [path for path in event.paths if not _unsafe(path)
             and any(plex_link.within(path, root) for root in library.roots or [])]
    _queue(library, paths, event.plex_rating_key, "plex")
    return jsonify({"ignored": False, "event": event.event, "rating_key": event.plex_rating_key,
                    "title": event.title, "queued": [{"library_id": library.id, "library": library.name,
                                                      "paths": paths}]}), 202


def _arr(sender: str) -> Any:
    try:
        event = parse_arr_webhook(request.get_data(cache=True))
    except WebhookError as exc:
        raise ApiError(400, "invalid_webhook", str(exc)) from None
    if not event.actionable:
        return _ignored(event.ignored or "ignored", event=event.event)
    return _route_paths(event, sender)


def _route_paths(event: WebhookEvent, sender: str) -> Any:
    """Each path to the library holding it (through the sender's mappings), one task per library."""
    libraries = list(db().scalars(select(Library).where(Library.enabled.is_(True))))
    groups: dict[int, tuple[Library, list[str]]] = {}
    outside = []
    for path in event.paths:
        found = None if _unsafe(path) else plex_link.find_library(libraries, path, sender)
        if found is None:
            outside.append(path)
            continue
        library, own = found
        groups.setdefault(library.id, (library, []))[1].append(own)
    if not groups:
        return _ignored("the file is outside every library" if len(outside) == 1 else
                        "the files are outside every library", event=event.event, paths=outside)
    for library, paths in groups.values():
        _queue(library, paths, None, sender)
    return jsonify({"ignored": False, "event": event.event, "title": event.title, "outside": outside,
                    "queued": [{"library_id": library.id, "library": library.name, "paths": paths}
                               for library, paths in groups.values()]}), 202


@api_route(bp, "/webhooks/sonarr", ("POST",), summary="Sonarr webhook: queue imported episodes",
           role="webhook", tag="webhooks", status=202, responses=RESPONSES)
def sonarr_webhook() -> Any:
    """Sonarr's JSON: import events (Download, which covers upgrades, and Import/ImportComplete)
    give the files; paths are translated with the library's mappings for node "sonarr"."""
    return _arr("sonarr")


@api_route(bp, "/webhooks/radarr", ("POST",), summary="Radarr webhook: queue imported movies",
           role="webhook", tag="webhooks", status=202, responses=RESPONSES)
def radarr_webhook() -> Any:
    """Radarr's JSON: import events give the movie file; paths are translated with the library's
    mappings for node "radarr"."""
    return _arr("radarr")
