"""JSON answers with an ETag, so a page polling every few seconds gets a body-less
304 when nothing changed (less to send, parse and redraw)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Response, current_app, request


def with_etag(body: bytes, mimetype: str, status: int = 200) -> Response:
    """``body``, or a body-less 304 when the client already has it."""
    etag = hashlib.blake2b(body, digest_size=12).hexdigest()
    if request.if_none_match.contains(etag):
        response = current_app.response_class(status=304)
    else:
        response = current_app.response_class(body, status=status, mimetype=mimetype)
    response.set_etag(etag)
    # Revalidate every time; private because answers depend on who asks.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def json_with_etag(payload: Any, status: int = 200) -> Response:
    return with_etag(json.dumps(payload, separators=(",", ":"), default=str).encode(), "application/json", status)
