"""Admin pages: API keys (a new key is shown once) and users."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user

from codecshift import apikeys, users
from codecshift.models import ApiKey, User
from web.auth import auth_blueprint as bp
from web.extensions import db, infra
from web.security import admin_required_page

log = logging.getLogger(__name__)


def _actor() -> str:
    return current_user.username if current_user.is_authenticated else "anonymous"


def _keys_page(status: int = 200, **context: Any) -> Any:
    context.setdefault("error", None)
    context.setdefault("created", None)
    keys = [apikeys.view(row) for row in apikeys.list_keys(db())]
    return render_template("auth/api_keys.html", keys=keys, roles=apikeys.ROLES, **context), status


@bp.route("/admin/api-keys")
@admin_required_page
def api_keys() -> Any:
    return _keys_page()


@bp.route("/admin/api-keys", methods=["POST"])
@admin_required_page
def create_api_key() -> Any:
    """Answered with the page itself (never a redirect), so the key is on screen once and nowhere else."""
    session = db()
    try:
        created = apikeys.create_key(session, request.form.get("name", ""), request.form.get("role", "node"))
    except apikeys.ApiKeyError as exc:
        session.rollback()
        return _keys_page(400, error=str(exc))
    session.commit()
    log.info("%s created API key %d %r (%s)", _actor(), created.id, created.name, created.role)
    return _keys_page(201, created=created)


@bp.route("/admin/api-keys/<int:key_id>/revoke", methods=["POST"])
@admin_required_page
def revoke_api_key(key_id: int) -> Any:
    session = db()
    if session.get(ApiKey, key_id) is None:
        abort(404)
    apikeys.revoke_key(session, key_id)
    session.commit()
    log.info("%s revoked API key %d", _actor(), key_id)
    return redirect(url_for("auth.api_keys"), code=303)


@bp.route("/admin/api-keys/<int:key_id>/delete", methods=["POST"])
@admin_required_page
def delete_api_key(key_id: int) -> Any:
    session = db()
    if not apikeys.delete_key(session, key_id):
        abort(404)
    session.commit()
    return redirect(url_for("auth.api_keys"), code=303)


def _users_page(status: int = 200, **context: Any) -> Any:
    context.setdefault("error", None)
    context.setdefault("message", None)
    rows = [users.view(row) for row in users.list_users(db())]
    me = current_user.row.id if infra().auth_enabled and current_user.is_authenticated else None
    return render_template("auth/users.html", users=rows, me=me, **context), status


def _user(user_id: int) -> User:
    row = db().get(User, user_id)
    if row is None:
        abort(404)
    return row


@bp.route("/admin/users")
@admin_required_page
def users_page() -> Any:
    return _users_page()


@bp.route("/admin/users", methods=["POST"])
@admin_required_page
def create_user() -> Any:
    session = db()
    try:
        row = users.create_user(session, request.form.get("username", ""), request.form.get("password", ""),
                                is_admin=request.form.get("is_admin") == "on")
    except users.UserError as exc:
        session.rollback()
        return _users_page(400, error=str(exc))
    session.commit()
    log.info("%s created user %r", _actor(), row.username)
    return _users_page(201, message=f"User {row.username} created.")


@bp.route("/admin/users/<int:user_id>/<any(revoke_sessions,make_admin,make_user,delete):action>",
          methods=["POST"])
@admin_required_page
def user_action(user_id: int, action: str) -> Any:
    session = db()
    row = _user(user_id)
    name = row.username
    try:
        if action == "revoke_sessions":
            users.revoke_sessions(row)
        elif action in ("make_admin", "make_user"):
            users.set_admin(session, row, action == "make_admin")
        else:
            users.delete_user(session, row)
    except users.UserError as exc:
        session.rollback()
        return _users_page(400, error=str(exc))
    session.commit()
    log.info("%s: %s on user %r", _actor(), action, name)
    return redirect(url_for("auth.users_page"), code=303)
