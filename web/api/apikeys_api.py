"""API keys over JSON (admins): list with last use, create (the secret is answered
once, never again), revoke at once, delete."""

from __future__ import annotations

from typing import Any, Literal

from flask import jsonify
from pydantic import Field

from codecshift import apikeys
from codecshift.models import ApiKey
from web.api import api_blueprint as bp
from web.api.errors import ApiError, not_found
from web.api.routing import api_route
from web.api.schemas import Strict
from web.extensions import db


class ApiKeyBody(Strict):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["node", "metrics", "webhook", "admin"] = "node"


@api_route(bp, "/apikeys", ("GET",), summary="List API keys", role="admin", tag="security")
def list_api_keys() -> Any:
    """Name, role, public prefix, creation, last use and revocation; never the key."""
    return jsonify({"items": [apikeys.view(row).as_dict() for row in apikeys.list_keys(db())]})


@api_route(bp, "/apikeys", ("POST",), summary="Create an API key", role="admin", tag="security",
           body=ApiKeyBody, status=201)
def create_api_key(body: ApiKeyBody) -> Any:
    """The answer carries ``secret``: the only time the key can be read."""
    session = db()
    try:
        created = apikeys.create_key(session, body.name, body.role)
    except apikeys.ApiKeyError as exc:
        raise ApiError(400, "validation_error", str(exc), field="name") from None
    session.commit()
    row = session.get(ApiKey, created.id)
    return jsonify({**apikeys.view(row).as_dict(), "secret": created.secret}), 201


@api_route(bp, "/apikeys/<int:key_id>/revoke", ("POST",), summary="Revoke an API key", role="admin",
           tag="security")
def revoke_api_key(key_id: int) -> Any:
    """The key stops working with the next request that sends it."""
    session = db()
    row = session.get(ApiKey, key_id)
    if row is None:
        raise not_found("API key", key_id)
    apikeys.revoke_key(session, key_id)
    session.commit()
    return jsonify(apikeys.view(row).as_dict())


@api_route(bp, "/apikeys/<int:key_id>", ("DELETE",), summary="Delete an API key", role="admin",
           tag="security")
def delete_api_key(key_id: int) -> Any:
    session = db()
    if not apikeys.delete_key(session, key_id):
        raise not_found("API key", key_id)
    session.commit()
    return jsonify({"deleted": key_id})
