"""Starting and ending a person's session, and where to go afterwards."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import request, session
from flask_login import login_user, logout_user

from codecshift.models import User
from web.security import AUTH_AT, NOTICE, LoginUser

LOGIN_METHOD = "login_method"  # local | oidc | setup
ID_TOKEN = "oidc_id_token"  # kept for the provider's logout (id_token_hint)


def safe_next(value: str | None, default: str = "/") -> str:
    """A same-site relative path to go to after signing in; anything else becomes ``default``.

    Refuses absolute URLs, scheme-relative ``//host`` and ``/\\host`` forms, and
    control characters, so ``next`` can never send anyone to another site.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if "\\" in value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def start_session(user: User, method: str, *, id_token: str | None = None) -> None:
    """Sign ``user`` in with a fresh session (nothing from before sign-in survives)."""
    session.clear()
    login_user(LoginUser(user))
    session[AUTH_AT] = time.time()
    session[LOGIN_METHOD] = method
    if id_token and len(id_token) < 2500:  # the cookie has to stay under 4 kB
        session[ID_TOKEN] = id_token
    session.permanent = True


def refresh_identity(user: User) -> None:
    """After the user's own password change: keep this session, under the new session version."""
    signed_in = session.get(AUTH_AT)
    login_user(LoginUser(user))
    session[AUTH_AT] = signed_in


def end_session() -> tuple[str | None, str | None]:
    """Sign out; returns how the user had signed in and the ID token, for the provider's logout."""
    method, id_token = session.get(LOGIN_METHOD), session.get(ID_TOKEN)
    logout_user()
    session.clear()
    session[NOTICE] = "signed_out"
    return method, id_token


def client_address() -> str:
    return request.remote_addr or "unknown"
