"""Sign-in for people: local accounts, OIDC, the first-admin setup page, the
account page and the admin pages for users and API keys (blueprint "auth")."""

from __future__ import annotations

from flask import Blueprint, Flask

auth_blueprint = Blueprint("auth", __name__, static_folder="static", static_url_path="/auth/static")

# Importing the view modules registers their routes on the blueprint.
from web.auth import account_views, admin_views, local_views, oidc  # noqa: E402


def init_auth(app: Flask) -> None:
    """Register the blueprint and, when configured, the OIDC client."""
    oidc.init_oidc(app)
    app.register_blueprint(auth_blueprint)


__all__ = ["account_views", "admin_views", "auth_blueprint", "init_auth", "local_views", "oidc"]
