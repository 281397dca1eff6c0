"""Dashboard users over JSON (admins): list, create, change role or password, sign
out everywhere, delete. Password hashes never leave the database."""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Any

from flask import g, jsonify
from pydantic import Field, StrictBool

from codecshift import users
from codecshift.models import User
from web.api import api_blueprint as bp
from web.api.errors import ApiError, not_found
from web.api.routing import api_route
from web.api.schemas import Strict
from web.extensions import db


class UserBody(Strict):
    username: str = Field(min_length=1, max_length=200)
    password: str | None = Field(None, max_length=users.MAX_PASSWORD_LENGTH)
    is_admin: StrictBool = False


class UserPatch(Strict):
    password: str | None = Field(None, max_length=users.MAX_PASSWORD_LENGTH)
    is_admin: StrictBool | None = None


def _user(user_id: int) -> User:
    row = db().get(User, user_id)
    if row is None:
        raise not_found("user", user_id)
    return row


def _user_error(exc: users.UserError, field: str) -> ApiError:
    db().rollback()
    return ApiError(400, "validation_error", str(exc), field=field)


@api_route(bp, "/me", ("GET",), summary="Who is calling", role="read", tag="security")
def whoami() -> Any:
    principal = g.principal
    return jsonify({"name": principal.name, "kind": principal.kind, "role": principal.role})


@api_route(bp, "/users", ("GET",), summary="List users", role="admin", tag="security")
def list_users() -> Any:
    return jsonify({"items": [asdict(users.view(row)) for row in users.list_users(db())]})


@api_route(bp, "/users", ("POST",), summary="Create a local user", role="admin", tag="security",
           body=UserBody, status=201)
def create_user(body: UserBody) -> Any:
    """Without ``password`` one is generated and answered once, in ``password``."""
    session = db()
    generated = secrets.token_urlsafe(18) if body.password is None else None
    try:
        row = users.create_user(session, body.username, body.password or generated, is_admin=body.is_admin)
    except users.UserError as exc:
        field = "password" if "password" in str(exc) else "username"
        raise _user_error(exc, field) from None
    session.commit()
    answer: dict[str, Any] = asdict(users.view(row))
    if generated is not None:
        answer["password"] = generated
    return jsonify(answer), 201


@api_route(bp, "/users/<int:user_id>", ("PATCH",), summary="Change a user's role or password", role="admin",
           tag="security", body=UserPatch)
def update_user(user_id: int, body: UserPatch) -> Any:
    """A new password signs the user out everywhere."""
    session = db()
    row = _user(user_id)
    try:
        if body.is_admin is not None:
            users.set_admin(session, row, body.is_admin)
        if body.password is not None:
            if row.oidc_subject:
                raise users.UserError("a single sign-on user has no password here")
            users.set_password(session, row, body.password)
    except users.UserError as exc:
        raise _user_error(exc, "password" if "password" in str(exc) else "is_admin") from None
    session.commit()
    return jsonify(asdict(users.view(row)))


@api_route(bp, "/users/<int:user_id>/revoke-sessions", ("POST",), summary="Sign a user out everywhere",
           role="admin", tag="security")
def revoke_user_sessions(user_id: int) -> Any:
    row = _user(user_id)
    users.revoke_sessions(row)
    db().commit()
    return jsonify(asdict(users.view(row)))


@api_route(bp, "/users/<int:user_id>", ("DELETE",), summary="Delete a user", role="admin", tag="security")
def delete_user(user_id: int) -> Any:
    session = db()
    try:
        users.delete_user(session, _user(user_id))
    except users.UserError as exc:
        raise _user_error(exc, "user_id") from None
    session.commit()
    return jsonify({"deleted": user_id})
