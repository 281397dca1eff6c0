"""Operations endpoints outside the JSON API: Prometheus metrics at /metrics."""

from __future__ import annotations

from flask import Blueprint, Response, request

from codecshift.metrics import render_metrics
from web.extensions import engine
from web.security import authorize_api_request

ops_blueprint = Blueprint("ops", __name__)


@ops_blueprint.get("/metrics")
def metrics() -> Response:
    """Protected like the API: an X-API-Key or Bearer key with the metrics (or admin) role,
    or a signed-in session."""
    authorize_api_request("metrics")
    body, content_type = render_metrics(engine(), request.headers.get("Accept"))
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
