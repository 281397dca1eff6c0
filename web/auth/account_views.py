"""A signed-in person's own account: change the password, sign out everywhere."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from flask_login import current_user

from codecshift import users
from web.auth import auth_blueprint as bp
from web.auth.local_views import _too_many
from web.auth.ratelimit import login_limiter
from web.auth.sessions import client_address, end_session, refresh_identity
from web.extensions import db, infra
from web.security import login_required_page


def _render(status: int = 200, **context: Any) -> Any:
    context.setdefault("error", None)
    context.setdefault("message", None)
    user = current_user.row if infra().auth_enabled and current_user.is_authenticated else None
    return render_template("auth/account.html", user=user, **context), status


@bp.route("/account")
@login_required_page
def account() -> Any:
    return _render()


@bp.route("/account/password", methods=["POST"])
@login_required_page
def change_password() -> Any:
    """The current password is asked again; every other session of the account ends."""
    if not infra().auth_enabled:
        return redirect(url_for("auth.account"))
    user = current_user.row
    if not user.password_hash:
        return _render(400, error="This account signs in through single sign-on and has no password here.")
    wait = login_limiter().hit("password", f"addr:{client_address()}", f"user:{user.username.lower()}")
    if wait is not None:
        return _render(429, error=_too_many(wait))
    if users.authenticate(db(), user.username, request.form.get("current_password", "")) is None:
        db().rollback()
        return _render(400, error="The current password is wrong.")
    new = request.form.get("new_password", "")
    if new != request.form.get("new_password_confirm", ""):
        return _render(400, error="The two new passwords differ.")
    try:
        users.set_password(db(), user, new)
    except users.UserError as exc:
        db().rollback()
        return _render(400, error=str(exc))
    db().commit()
    refresh_identity(user)
    return _render(message="Password changed. Your other sessions are signed out.")


@bp.route("/account/sessions/revoke", methods=["POST"])
@login_required_page
def revoke_my_sessions() -> Any:
    """Sign out everywhere, this browser included."""
    if infra().auth_enabled:
        users.revoke_sessions(current_user.row)
        db().commit()
        end_session()
    return redirect(url_for("auth.login"), code=303)
