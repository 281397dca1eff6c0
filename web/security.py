"""Who may call what: API keys for machines, signed-in sessions for people.

The API blueprint calls ``authorize_api_request`` before every endpoint with
the role the endpoint declared. A node key reaches only "node" endpoints; an
admin key reaches everything; a signed-in user reads, an admin user changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, g, request
from flask_login import AnonymousUserMixin, LoginManager, current_user

from codecshift.apikeys import verify_key
from codecshift.models import User
from web.api.errors import ApiError
from web.extensions import db, infra

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Principal:
    """The caller of this request."""

    kind: str  # key | user | anonymous
    name: str
    role: str  # node | admin | user


class LoginUser:
    """The flask-login view of a User row."""

    def __init__(self, user: User) -> None:
        self.row = user
        self.is_authenticated = True
        self.is_active = True
        self.is_anonymous = False

    def get_id(self) -> str:
        return f"{self.row.id}:{self.row.session_version}"

    @property
    def is_admin(self) -> bool:
        return self.row.is_admin

    @property
    def username(self) -> str:
        return self.row.username


def _load_user(user_id: str) -> LoginUser | None:
    ident, _, version = user_id.partition(":")
    if not ident.isdigit():
        return None
    user = db().get(User, int(ident))
    if user is None or str(user.session_version) != version:
        return None
    return LoginUser(user)


def init_security(app: Flask) -> None:
    manager = LoginManager(app)
    manager.user_loader(_load_user)
    manager.anonymous_user = AnonymousUserMixin
    manager.login_view = "auth.login"


def _check_role(principal: Principal, role: str) -> None:
    if principal.role == "admin" or role == "public":
        return
    if role == "node" and principal.role == "node":
        return
    if role == "read" and principal.kind == "user":
        return
    raise ApiError(403, "forbidden", f"this endpoint needs the {role} role")


def authorize_api_request(role: str) -> Principal | None:
    """Raise ApiError 401/403 unless the caller may use an endpoint of ``role``."""
    if role == "public":
        return None
    if not infra().auth_enabled:
        g.principal = Principal("anonymous", "anonymous", "admin")
        return g.principal
    supplied = request.headers.get("X-API-Key")
    if supplied is not None:
        key = verify_key(db(), supplied.strip())
        if key is None:
            raise ApiError(401, "unauthorized", "the API key is wrong or revoked")
        principal = Principal("key", key.name, key.role)
    elif current_user.is_authenticated:
        principal = Principal("user", current_user.username, "admin" if current_user.is_admin else "user")
        if request.method not in SAFE_METHODS:
            _check_csrf()
    else:
        raise ApiError(401, "unauthorized", "send an X-API-Key header or sign in")
    _check_role(principal, role)
    g.principal = principal
    return principal


def _check_csrf() -> None:
    from flask_wtf.csrf import CSRFError, validate_csrf

    token = request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
    try:
        validate_csrf(token)
    except CSRFError as exc:
        raise ApiError(400, "csrf_failed", f"CSRF check failed: {exc.description}") from None
    except Exception as exc:
        raise ApiError(400, "csrf_failed", f"CSRF check failed: {exc}") from None


def principal_name() -> str:
    principal = g.get("principal")
    return principal.name if principal else "anonymous"


def login_required_page(view):  # type: ignore[no-untyped-def]
    """Pages: signed-in people only (everyone when authentication is explicitly off)."""
    import functools

    from flask import redirect, url_for

    @functools.wraps(view)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        if infra().auth_enabled and not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def admin_required_page(view):  # type: ignore[no-untyped-def]
    """Pages that change things: admins only."""
    import functools

    from flask import abort

    @functools.wraps(view)
    @login_required_page
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        if infra().auth_enabled and not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper
