"""Who may call what: API keys for machines, signed-in sessions for people.

The API blueprint calls ``authorize_api_request`` before every endpoint with
the role the endpoint declared. A node key reaches only "node" endpoints; an
admin key reaches everything; a signed-in user reads, an admin user changes.
Pages use ``login_required_page`` / ``admin_required_page``. ``init_security``
wires sessions (lifetime, Secure over https), CSRF on every form, the sign-in
rate limiter and the security headers of every response.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, g, has_request_context, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import AnonymousUserMixin, LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect, validate_csrf
from sqlalchemy import select

from codecshift.apikeys import verify_key
from codecshift.models import ApiKey, Node, User
from web.extensions import SETTINGS_KEY, db, infra

log = logging.getLogger(__name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SESSION_COOKIE = "codecshift_session"
AUTH_AT = "auth_at"  # when the user signed in (epoch seconds), signed into the cookie
NOTICE = "auth_notice"  # a one-off message for the sign-in page ("expired", "signed_out")
AUTH_DISABLED_WARNING = ("Authentication is turned off (CODECSHIFT_AUTH_ENABLED=false): anyone who can "
                         "reach this dashboard can change it and read its settings.")
csrf = CSRFProtect()


@dataclass(frozen=True)
class Principal:
    """The caller of this request."""

    kind: str  # key | user | anonymous
    name: str
    role: str  # node | admin | user
    key_id: int | None = None


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
        return bool(self.row.is_admin)

    @property
    def username(self) -> str:
        return self.row.username


class AnonymousUser(AnonymousUserMixin):
    is_admin = False
    username = "anonymous"


def _load_user(user_id: str) -> LoginUser | None:
    """The session's user, unless the account is gone or its sessions were revoked."""
    ident, _, version = user_id.partition(":")
    if not ident.isdigit():
        return None
    user = db().get(User, int(ident))
    if user is None or str(user.session_version) != version:
        return None
    return LoginUser(user)


class SessionInterface(SecureCookieSessionInterface):
    """The signed-cookie session, marked Secure whenever the request came over https
    (behind a proxy, ProxyFix has already turned X-Forwarded-Proto into the scheme)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)


def lifetime() -> timedelta:
    return timedelta(hours=infra().session_lifetime_hours)


def _expire_old_sessions() -> None:
    """A sign-in older than the lifetime ends: the next page goes back to the sign-in page.

    The sign-in time travels in the signed cookie, so the limit holds even for a
    replayed cookie; Flask's own max-age check covers cookies that stop being used.
    """
    if "_user_id" not in session:
        return
    signed_in = session.get(AUTH_AT)
    if not isinstance(signed_in, int | float) or time.time() - signed_in > lifetime().total_seconds():
        session.clear()
        session[NOTICE] = "expired"
        g.session_expired = True


def _check_form_csrf() -> Any:
    """Every HTML form POST carries the CSRF token; the JSON API checks its own way
    (X-API-Key, or the token in the X-CSRFToken header for signed-in sessions)."""
    if request.method in SAFE_METHODS or request.blueprint == "api" or request.routing_exception is not None:
        return None  # the API checks itself; an unknown route answers 404/405 anyway
    if g.get("session_expired"):  # the token went with the session: ask to sign in again
        return redirect(url_for("auth.login"), code=303)
    csrf.protect()
    return None


def _template_globals() -> dict[str, Any]:
    settings = infra()
    return {
        "auth_disabled_warning": None if settings.auth_enabled else AUTH_DISABLED_WARNING,
        "auth_enabled": settings.auth_enabled,
    }


def init_security(app: Flask) -> None:
    settings = app.extensions[SETTINGS_KEY]
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # The cookie outlives the sign-in by a day so the sign-in page can say why it is back;
        # the sign-in itself ends at the lifetime (_expire_old_sessions).
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_lifetime_hours, days=1),
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which has its own lifetime
    )
    manager = LoginManager(app)
    manager.user_loader(_load_user)
    manager.anonymous_user = AnonymousUser
    manager.login_view = "auth.login"
    manager.session_protection = "basic"
    csrf.init_app(app)
    app.before_request(_expire_old_sessions)
    app.before_request(_check_form_csrf)
    app.context_processor(_template_globals)
    from web.auth.headers import init_headers
    from web.auth.ratelimit import init_limiter

    init_headers(app, settings)
    init_limiter(app, settings)
    if not settings.auth_enabled:
        log.warning("AUTHENTICATION IS OFF (CODECSHIFT_AUTH_ENABLED=false): anyone who reaches the "
                    "dashboard is an admin. Use this only on a trusted, isolated network.")


def _api_error(status: int, code: str, message: str) -> Exception:
    # Imported here: web.api imports this module, so a top-level import would be circular.
    from web.api.errors import ApiError

    return ApiError(status, code, message)


def _check_role(principal: Principal, role: str) -> None:
    if principal.role == "admin" or role == "public":
        return
    if role == "node" and principal.role == "node":
        return
    if role == "webhook" and principal.role == "webhook":
        return
    if role == "read" and principal.kind == "user":
        return
    if role == "metrics" and (principal.kind == "user" or principal.role == "metrics"):
        return
    raise _api_error(403, "forbidden", f"this endpoint needs the {role} role")


def _cross_site() -> bool:
    """True when the browser says this request was sent by another site's page."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != request.host


def authorize_api_request(role: str) -> Principal | None:
    """Raise ApiError 401/403 unless the caller may use an endpoint of ``role``."""
    if role == "public":
        return None
    if not infra().auth_enabled:
        # Keys are not checked with authentication off, so a key (any text, even in the URL of
        # a webhook route) must not unlock changes from another site's page. Servers (webhook
        # senders, scripts) send neither Origin nor Sec-Fetch-Site; browsers always do.
        if request.method not in SAFE_METHODS and _cross_site():
            raise _api_error(403, "cross_site", "changes from another site are refused")
        g.principal = Principal("anonymous", "anonymous", "admin")
        return g.principal
    supplied = _supplied_key(in_url=role == "webhook")
    if supplied is not None:
        key = verify_key(db(), supplied.strip())
        if key is None:
            raise _api_error(401, "unauthorized", "the API key is wrong or revoked")
        principal = Principal("key", key.name, key.role, key_id=key.id)
    elif current_user.is_authenticated:
        principal = Principal("user", current_user.username, "admin" if current_user.is_admin else "user")
        if request.method not in SAFE_METHODS:
            _check_csrf()
    else:
        raise _api_error(401, "unauthorized", "send an X-API-Key header or sign in")
    _check_role(principal, role)
    g.principal = principal
    return principal


def _supplied_key(in_url: bool = False) -> str | None:
    """X-API-Key, or a Bearer token (what Prometheus and most tools can send).

    With ``in_url`` (webhook routes only: Plex cannot set headers, Sonarr and
    Radarr offer a user name and password) also the password of HTTP basic
    auth or an ``apikey`` query argument.
    """
    key = request.headers.get("X-API-Key")
    if key is None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            key = token.strip()
        elif in_url and scheme.lower() == "basic" and request.authorization is not None:
            key = request.authorization.password or request.authorization.username or ""
    if key is None and in_url and "apikey" in request.args:
        key = request.args.get("apikey", "")
    return key


def _check_csrf() -> None:
    token = request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
    if not token:
        raise _api_error(403, "csrf_failed", "a signed-in change needs the X-CSRFToken header")
    try:
        validate_csrf(token)
    except CSRFError as exc:
        raise _api_error(403, "csrf_failed", f"CSRF check failed: {exc.description}") from None
    except Exception as exc:  # wtforms' ValidationError carries the reason
        raise _api_error(403, "csrf_failed", f"CSRF check failed: {exc}") from None


def principal_name() -> str:
    principal = g.get("principal")
    if principal is not None:
        return principal.name
    if has_request_context() and current_user.is_authenticated:
        return current_user.username
    return "anonymous"


def login_required_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages: signed-in people only (everyone when authentication is explicitly off)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if infra().auth_enabled and not current_user.is_authenticated:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("auth.login", next=target) if target and target != "/"
                            else url_for("auth.login"))
        return view(*args, **kwargs)

    return wrapper


def admin_required_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages that change things: admins only."""

    @functools.wraps(view)
    @login_required_page
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if infra().auth_enabled and not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def require_node(name: str, *, binding: bool = False) -> None:
    """A node key acts only as the nodes it registered: the key that registers a node name
    owns it, and another node key cannot heartbeat, claim or report as that node. Admin
    keys and people may act for any node. ``binding`` is the registration itself."""
    principal = g.get("principal")
    if principal is None or principal.kind != "key" or principal.role != "node":
        return
    session = db()
    node = session.scalar(select(Node).where(Node.name == name))
    owner = session.get(ApiKey, node.owner_key_id) if node is not None and node.owner_key_id else None
    if node is not None and owner is not None and owner.revoked_at is None:
        if owner.id == principal.key_id:
            return
        raise _api_error(403, "forbidden", f"node {name} was registered with another key ({owner.name})")
    if not binding:
        raise _api_error(403, "forbidden", f"node {name} is not registered with this key: register first")
