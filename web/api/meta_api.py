"""The API's own description and a liveness probe."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import text

from web.api import api_blueprint as bp
from web.api.errors import ApiError
from web.api.openapi import build_openapi
from web.api.routing import api_route
from web.extensions import db


@api_route(bp, "/openapi.json", ("GET",), summary="This API's OpenAPI document", role="public", tag="meta")
def openapi_document() -> Any:
    return jsonify(build_openapi())


@api_route(bp, "/health", ("GET",), summary="Liveness: the dashboard and its database answer", role="public",
           tag="meta", responses={503: "The database does not answer"})
def health() -> Any:
    try:
        db().execute(text("SELECT 1"))
    except Exception:
        raise ApiError(503, "unavailable", "the database does not answer") from None
    return jsonify({"ok": True})
