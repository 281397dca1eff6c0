"""The JSON API under /api: every endpoint declared with its role and request models."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from web.security import authorize_api_request

api_blueprint = Blueprint("api", __name__)


@api_blueprint.before_request
def _authorize() -> None:
    """The role the matched endpoint declared; an endpoint declared without one needs an admin.
    When no endpoint matched (an unknown route, a wrong method) routing's own 404/405 answers:
    nothing is there to protect, and a 401 would wrongly suggest that there is."""
    if request.url_rule is None or request.routing_exception is not None:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None:
        return
    authorize_api_request(getattr(view, "api_role", "admin"))


@api_blueprint.after_request
def _no_store(response):  # type: ignore[no-untyped-def]
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# Importing the modules registers their routes on the blueprint.
from web.api import (  # noqa: E402
    apikeys_api,
    failures_api,
    history_api,
    jobs_api,
    libraries_api,
    meta_api,
    nodes_api,
    plex_api,
    queue_api,
    settings_api,
    status_api,
    users_api,
    webhooks_api,
)

__all__ = ["api_blueprint", "apikeys_api", "failures_api", "history_api", "jobs_api", "jsonify", "libraries_api",
           "meta_api", "nodes_api", "plex_api", "queue_api", "settings_api", "status_api", "users_api",
           "webhooks_api"]
