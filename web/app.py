"""The Flask app factory: settings, database, Celery client, blueprints, errors."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from codecshift.config import InfraSettings, load_settings
from codecshift.db import engine_for
from codecshift.version import read_version
from web.api.errors import ApiError
from web.extensions import init_resources
from web.security import init_security

log = logging.getLogger(__name__)

# Every request body is small (the largest are 10,000 job ids or a library's mappings); a
# larger one is refused with 413 before it is read. The Plex webhook allows more
# (web.api.webhooks_api.PLEX_WEBHOOK_MAX_BYTES): its multipart body carries a thumbnail.
MAX_REQUEST_BYTES = 2 * 1024 * 1024


def create_app(settings: InfraSettings | None = None, *, engine: Engine | None = None,
               celery_app: Any = None) -> Flask:
    """Build the dashboard app; tests pass their own settings, engine and Celery app."""
    settings = settings or load_settings()
    engine = engine or engine_for(settings.effective_database_url)
    if celery_app is None:
        from tasks.app import create_celery

        celery_app = create_celery(settings)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.effective_secret_key(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        CODECSHIFT_VERSION=read_version(),
    )
    if settings.proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count,
                                x_host=settings.proxy_count, x_port=settings.proxy_count,
                                x_prefix=settings.proxy_count)
    init_resources(app, settings, engine, celery_app)
    init_security(app)
    _register_blueprints(app)
    _register_errors(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from web.api import api_blueprint
    from web.auth import init_auth
    from web.dashboard import init_dashboard
    from web.ops import ops_blueprint

    app.register_blueprint(api_blueprint, url_prefix="/api")
    app.register_blueprint(ops_blueprint)
    init_auth(app)
    init_dashboard(app)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        return jsonify(exc.body()), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if _wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            message = exc.description
            if exc.code == 413 and request.max_content_length:
                message = f"the request body is too large: at most {request.max_content_length} bytes"
            return jsonify({"error": {"code": code, "message": message}}), exc.code
        return exc

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return jsonify({"error": {"code": "internal_error",
                                      "message": "internal error; see the dashboard log"}}), 500
        return "Internal error; see the dashboard log.", 500
