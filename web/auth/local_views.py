"""Local sign-in, sign-out and the one-time first-admin setup page."""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import abort, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import select

from codecshift import users
from codecshift.models import User
from web.auth import auth_blueprint as bp
from web.auth.oidc import oidc_client, provider_logout_url
from web.auth.ratelimit import login_limiter
from web.auth.sessions import client_address, end_session, safe_next, start_session
from web.extensions import db, infra
from web.security import NOTICE

log = logging.getLogger(__name__)
NOTICES = {
    "expired": "Your session has expired. Please sign in again.",
    "signed_out": "You are signed out.",
}


def _page(template: str, status: int = 200, **context: Any) -> Any:
    settings = infra()
    context.setdefault("error", None)
    return render_template(template, local_login=settings.local_login_enabled,
                           oidc_login=oidc_client() is not None, oidc_name=settings.oidc_provider_name,
                           **context), status


def _too_many(wait: float) -> str:
    return f"Too many sign-in attempts. Try again in {math.ceil(wait)} seconds."


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """GET: the form (inputs ``username`` and ``password``); POST: sign in, then go to ``next``."""
    settings = infra()
    target = safe_next(request.values.get("next"))
    if not settings.auth_enabled or current_user.is_authenticated:
        return redirect(target)
    notice = NOTICES.get(session.pop(NOTICE, ""))
    needs_setup = settings.local_login_enabled and not users.admin_exists(db())
    if request.method == "GET":
        return _page("auth/login.html", notice=notice, next=target, username="", needs_setup=needs_setup)
    if not settings.local_login_enabled:
        abort(404)
    username = request.form.get("username", "").strip()[:200]
    password = request.form.get("password", "")
    wait = login_limiter().hit("login", f"addr:{client_address()}", f"user:{username.lower()}")
    if wait is not None:
        log.warning("sign-in rate limit reached for %r from %s", username, client_address())
        return _page("auth/login.html", 429, error=_too_many(wait), next=target, username=username,
                     needs_setup=needs_setup)
    user = users.authenticate(db(), username, password)
    if user is None:
        log.info("failed sign-in for %r from %s", username, client_address())
        return _page("auth/login.html", 401, error="Wrong user name or password.", next=target,
                     username=username, needs_setup=needs_setup)
    db().commit()
    start_session(user, "local")
    log.info("%s signed in from %s", user.username, client_address())
    return redirect(target)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    """POST signs out (also at the OIDC provider when it offers RP-initiated logout);
    GET only shows a button, so a link or an image cannot sign anyone out."""
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        return _page("auth/logout.html")
    method, id_token = end_session()
    if method == "oidc":
        url = provider_logout_url(id_token, url_for("auth.login", _external=True))
        if url:
            return redirect(url, code=303)
    return redirect(url_for("auth.login"), code=303)


def _first_admin_done() -> bool:
    return users.admin_exists(db())


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Any:
    """Create the first admin; gone (404) as soon as any admin exists."""
    settings = infra()
    if not settings.auth_enabled or not settings.local_login_enabled or _first_admin_done():
        abort(404)
    if request.method == "GET":
        return _page("auth/setup.html", username="")
    username = request.form.get("username", "").strip()[:200]
    password = request.form.get("password", "")
    wait = login_limiter().hit("setup", f"addr:{client_address()}")
    if wait is not None:
        return _page("auth/setup.html", 429, error=_too_many(wait), username=username)
    if password != request.form.get("password_confirm", ""):
        return _page("auth/setup.html", 400, error="The two passwords differ.", username=username)
    session_ = db()
    try:
        user = users.create_user(session_, username, password, is_admin=True)
    except users.UserError as exc:
        session_.rollback()
        return _page("auth/setup.html", 400, error=str(exc), username=username)
    session_.commit()
    # Two setups racing: the first admin created wins, the other is undone.
    first = session_.scalar(select(User.id).where(User.is_admin.is_(True)).order_by(User.id).limit(1))
    if first != user.id:
        session_.delete(user)
        session_.commit()
        abort(404)
    log.warning("first admin %r created through /setup from %s", user.username, client_address())
    start_session(user, "setup")
    return redirect("/")
