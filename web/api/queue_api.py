"""The whole queue: its counts, and pausing or resuming it.

Pausing is the ``queue_paused`` setting: the dispatcher publishes nothing and
nodes refuse to claim (their messages go back to the database), while running
encodes finish. Resuming clears it and asks for a dispatch at once instead of
waiting for beat's next tick.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from codecshift import settings_store
from web.api import api_blueprint as bp
from web.api.publishing import request_dispatch
from web.api.routing import api_route
from web.api.status_api import queue_counts
from web.extensions import db


def _queue_json() -> dict[str, Any]:
    session = db()
    return {"paused": bool(settings_store.get(session, "queue_paused")), **queue_counts(session)}


@api_route(bp, "/queue", ("GET",), summary="Queue counts and whether it is paused", role="read", tag="queue")
def get_queue() -> Any:
    """Jobs per status, queued jobs per capability queue ('unassigned' until dispatched), paused."""
    return jsonify(_queue_json())


def _set_paused(paused: bool) -> None:
    session = db()
    settings_store.set_value(session, "queue_paused", paused)
    session.commit()


@api_route(bp, "/queue/pause", ("POST",), summary="Pause the whole queue", role="admin", tag="queue")
def pause_queue() -> Any:
    """No new job starts on any node; encodes already running finish."""
    _set_paused(True)
    return jsonify(_queue_json())


@api_route(bp, "/queue/resume", ("POST",), summary="Resume the whole queue", role="admin", tag="queue")
def resume_queue() -> Any:
    """Work flows again; a dispatch is requested at once."""
    _set_paused(False)
    request_dispatch()
    return jsonify(_queue_json())
