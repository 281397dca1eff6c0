"""The dashboard's pages: server-rendered, live through small polled fragments.

Each page renders its live part from a partial template; the page's script
fetches the same URL with ``partial=1`` every few seconds, sending the last
ETag, and swaps the part in only when it changed (docs/dashboard.md explains
why polling rather than server-sent events).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template
from werkzeug.exceptions import HTTPException

dashboard_blueprint = Blueprint("dashboard", __name__)


@dashboard_blueprint.errorhandler(HTTPException)
def _page_error(exc: HTTPException) -> Any:
    """Errors on pages are pages too (the API answers JSON)."""
    return render_template("dashboard/error.html", code=exc.code, name=exc.name,
                           description=exc.description), exc.code


def _refuse_nul_in_forms() -> None:
    """Pages and sign-in forms: a NUL character in a query or form field is a 400 (the API
    checks its own queries and bodies in web.api.routing, naming the field in JSON)."""
    from flask import request

    from web.dashboard.common import refuse_nul

    if request.blueprint == "api" or request.routing_exception is not None:
        return
    refuse_nul(request.args, "query")
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        refuse_nul(request.form, "form")


def init_dashboard(app: Flask) -> None:
    """Register the pages, and the template helpers every page (and the auth pages) use."""
    from web.dashboard import common, filters

    filters.register(app)
    common.register(app)
    app.before_request(_refuse_nul_in_forms)
    from web.dashboard import (  # noqa: F401 - importing registers the routes
        history_pages,
        jobs_pages,
        library_pages,
        node_pages,
        overview_page,
        plex_pages,
        settings_page,
    )

    app.register_blueprint(dashboard_blueprint)
