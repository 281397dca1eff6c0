"""Behaviour settings: read by nodes (secrets left out), edited by admins."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify

from codecshift import registry, settings_store
from codecshift.services.jobs import node_settings
from web.api import api_blueprint as bp
from web.api.errors import ApiError
from web.api.routing import api_route
from web.api.schemas import SettingsBody
from web.extensions import db


def _visible(values: dict[str, Any]) -> dict[str, Any]:
    principal = g.get("principal")
    if principal is not None and principal.role == "node":
        return node_settings(values)
    return registry.public_values(values)


@api_route(bp, "/settings", ("GET",), summary="Every behaviour setting", role="node", tag="settings")
def get_settings() -> Any:
    """Current values; secrets (Plex token, notification URLs) only say whether they are set."""
    return jsonify({"settings": _visible(settings_store.load_all(db()))})


@api_route(bp, "/settings/schema", ("GET",), summary="The settings registry", role="read", tag="settings")
def settings_schema() -> Any:
    """Type, default, range, choices, help and group of every setting."""
    return jsonify({"groups": {group: [{
        "key": s.key, "type": s.type, "default": None if s.secret else s.default, "help": s.help,
        "minimum": s.minimum, "maximum": s.maximum, "choices": list(s.choices),
        "item_choices": list(s.item_choices), "per_library": s.per_library, "secret": s.secret,
        "managed": s.managed, "unit": s.unit} for s in items] for group, items in registry.groups().items()}})


@api_route(bp, "/settings", ("PATCH",), summary="Change settings", role="admin", tag="settings",
           body=SettingsBody)
def update_settings(body: SettingsBody) -> Any:
    """All values are checked first: one bad value changes nothing and is named. The Plex link's
    keys (plex_url, plex_token, plex_machine_identifier) are refused: POST /api/plex/link sets them
    after checking the server."""
    session = db()
    try:
        registry.check_writable(body.values)
        settings_store.set_many(session, body.values)
    except registry.SettingError as exc:
        session.rollback()
        raise ApiError(400, "validation_error", str(exc), field=f"values.{exc.key}") from None
    session.commit()
    if "queue_paused" in body.values:
        from web.api.publishing import request_dispatch

        request_dispatch()
    return jsonify({"settings": registry.public_values(settings_store.load_all(session))})
