"""People signing in: the login form, wrong passwords, sign-out, expiry, revoked
sessions, the one-time setup page, CSRF on every form, no open redirect, headers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from codecshift import users
from codecshift.db import session_scope
from codecshift.models import User
from support.auth_app import ADMIN_PASSWORD, AuthApp, csrf_token, inline_code, make_auth_app, sign_in


@pytest.fixture
def auth_app(tmp_path: Path, sqlite_url: str) -> AuthApp:
    return make_auth_app(tmp_path, sqlite_url)


def test_login_form_contract(auth_app: AuthApp) -> None:
    page = auth_app.client().get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert re.search(r'<input[^>]+name="username"', html) and re.search(r'<input[^>]+name="password"', html)
    assert re.search(r'<button type="submit"[^>]*>Sign in</button>', html)
    assert "/login/oidc" not in html  # OIDC is off here


def test_sign_in_lands_on_next_and_sign_out_ends_the_session(auth_app: AuthApp) -> None:
    client = auth_app.client()
    assert client.get("/account").headers["Location"].startswith("/login?next=/account")
    response = sign_in(client, "admin", ADMIN_PASSWORD, next_="/account")
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert client.get("/account").status_code == 200
    assert client.get("/api/me").json["name"] == "admin"
    token = csrf_token(client, "/account")
    out = client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["Location"] == "/login"
    assert "You are signed out" in client.get("/login").get_data(as_text=True)
    assert client.get("/account").status_code == 302
    assert client.get("/api/me").status_code == 401


def test_sign_out_needs_post_with_the_token(auth_app: AuthApp) -> None:
    client = auth_app.signed_in()
    assert client.get("/logout").status_code == 200  # a confirmation page, still signed in
    assert client.get("/api/me").status_code == 200
    assert client.post("/logout").status_code == 400  # no CSRF token: refused
    assert client.get("/api/me").status_code == 200


def test_a_wrong_password_or_unknown_user_is_refused_alike(auth_app: AuthApp) -> None:
    client = auth_app.client()
    wrong = sign_in(client, "admin", "not-the-password")
    unknown = sign_in(client, "nobody", "not-the-password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Wrong user name or password." in response.get_data(as_text=True)
    assert client.get("/api/me").status_code == 401
    assert sign_in(client, "ADMIN", ADMIN_PASSWORD).status_code == 302  # names are case-insensitive


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "http:/evil.example", "/%0a/evil"])
def test_next_never_leaves_the_site(auth_app: AuthApp, target: str) -> None:
    response = sign_in(auth_app.client(), "admin", ADMIN_PASSWORD, next_=target)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "evil" not in location.split("?")[0][:20]


def test_sign_in_attempts_are_rate_limited(tmp_path: Path, sqlite_url: str) -> None:
    app = make_auth_app(tmp_path, sqlite_url, login_rate_limit="3 per minute")
    client = app.client()
    statuses = [sign_in(client, "admin", "wrong-password").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    limited = sign_in(client, "admin", ADMIN_PASSWORD)  # even the right password waits now
    assert limited.status_code == 429
    assert "Too many sign-in attempts" in limited.get_data(as_text=True)


def test_the_limit_is_shared_by_every_worker_over_the_database(tmp_path: Path, sqlite_url: str) -> None:
    """Embedded mode (no Redis): two app instances (two gunicorn workers) count together."""
    first = make_auth_app(tmp_path, sqlite_url, login_rate_limit="4 per minute")
    from support.auth_app import build_app

    second_app = build_app(first.settings)
    from web.auth.ratelimit import LIMITER_KEY

    assert first.app.extensions[LIMITER_KEY].kind == "database"
    for client in (first.client(), second_app.test_client()) * 2:
        assert sign_in(client, "admin", "wrong-password").status_code == 401
    assert sign_in(second_app.test_client(), "admin", ADMIN_PASSWORD).status_code == 429
    assert sign_in(first.client(), "admin", ADMIN_PASSWORD).status_code == 429


def test_the_limit_lives_in_redis_when_the_broker_is_redis(tmp_path: Path, sqlite_url: str, redis_client) -> None:
    redis_client.flushdb()
    first = make_auth_app(tmp_path, sqlite_url, login_rate_limit="2 per minute",
                          broker_url="redis://127.0.0.1:6379/0")
    from support.auth_app import build_app
    from web.auth.ratelimit import LIMITER_KEY

    second_app = build_app(first.settings)
    assert first.app.extensions[LIMITER_KEY].kind == "redis"
    assert sign_in(first.client(), "admin", "wrong-password").status_code == 401
    assert sign_in(second_app.test_client(), "admin", "wrong-password").status_code == 401
    assert sign_in(first.client(), "admin", ADMIN_PASSWORD).status_code == 429
    assert any(b"login" in key for key in redis_client.keys("*"))
    redis_client.flushdb()


def test_an_expired_session_goes_back_to_the_login_page(tmp_path: Path, sqlite_url: str) -> None:
    app = make_auth_app(tmp_path, sqlite_url, session_lifetime_hours="0.0005")  # 1.8 seconds
    client = app.signed_in()
    assert client.get("/account").status_code == 200
    token = csrf_token(client, "/account")
    time.sleep(2.2)
    posted = client.post("/account/password", data={"csrf_token": token, "current_password": ADMIN_PASSWORD,
                                                     "new_password": "x" * 12, "new_password_confirm": "x" * 12})
    assert posted.status_code == 303 and posted.headers["Location"] == "/login"
    assert "Your session has expired" in client.get("/login").get_data(as_text=True)
    assert client.get("/account").status_code == 302
    assert client.get("/api/me").status_code == 401
    with session_scope(app.engine) as session:  # the late form changed nothing
        assert users.authenticate(session, "admin", ADMIN_PASSWORD) is not None


def test_an_expired_session_redirects_pages_to_sign_in(tmp_path: Path, sqlite_url: str) -> None:
    app = make_auth_app(tmp_path, sqlite_url, session_lifetime_hours="0.0005")
    client = app.signed_in()
    time.sleep(2.2)
    response = client.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "Your session has expired" in client.get("/login").get_data(as_text=True)
    assert client.get("/api/me").status_code == 401


def test_a_replayed_old_cookie_is_refused(auth_app: AuthApp) -> None:
    """The sign-in time is signed into the cookie: an old cookie cannot be kept alive."""
    client = auth_app.signed_in()
    with client.session_transaction() as sess:
        sess["auth_at"] = time.time() - 13 * 3600  # the default lifetime is 12 hours
    assert client.get("/api/me").status_code == 401


def test_a_password_change_ends_old_sessions(auth_app: AuthApp) -> None:
    old = auth_app.signed_in()
    current = auth_app.signed_in()
    token = csrf_token(current, "/account")
    changed = current.post("/account/password", data={"csrf_token": token, "current_password": ADMIN_PASSWORD,
                                                      "new_password": "a-brand-new-password",
                                                      "new_password_confirm": "a-brand-new-password"})
    assert changed.status_code == 200 and "Password changed" in changed.get_data(as_text=True)
    assert current.get("/api/me").status_code == 200  # this browser stays signed in
    assert old.get("/api/me").status_code == 401
    assert sign_in(auth_app.client(), "admin", ADMIN_PASSWORD).status_code == 401
    assert sign_in(auth_app.client(), "admin", "a-brand-new-password").status_code == 302


def test_revoking_sessions_from_the_cli_module(auth_app: AuthApp) -> None:
    client = auth_app.signed_in()
    with session_scope(auth_app.engine) as session:
        users.revoke_sessions(users.find_user(session, "admin"))
    assert client.get("/api/me").status_code == 401


def test_cookie_flags_and_secure_over_https_behind_a_proxy(tmp_path: Path, sqlite_url: str) -> None:
    app = make_auth_app(tmp_path, sqlite_url, proxy_count="1")
    client = app.client()
    token = csrf_token(client)
    plain = client.post("/login", data={"csrf_token": token, "username": "admin", "password": ADMIN_PASSWORD})
    cookie = plain.headers["Set-Cookie"]
    assert "codecshift_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    https = app.client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "cs.example.org", "X-Forwarded-For": "10.1.2.3"}
    page = https.get("/login", headers=proxied)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    signed = https.post("/login", data={"csrf_token": token, "username": "admin", "password": ADMIN_PASSWORD},
                        headers={**proxied, "Referer": "https://cs.example.org/login"})
    assert signed.status_code == 302, signed.get_data(as_text=True)[:500]
    assert "Secure" in signed.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in signed.headers


def test_setup_works_only_until_the_first_admin_exists(tmp_path: Path, sqlite_url: str) -> None:
    app = make_auth_app(tmp_path, sqlite_url, with_users=False)
    client = app.client()
    assert "create the first admin" in client.get("/login").get_data(as_text=True)
    token = csrf_token(client, "/setup")
    differ = client.post("/setup", data={"csrf_token": token, "username": "owner", "password": "long-enough-1",
                                         "password_confirm": "long-enough-2"})
    assert differ.status_code == 400
    short = client.post("/setup", data={"csrf_token": token, "username": "owner", "password": "short",
                                        "password_confirm": "short"})
    assert short.status_code == 400 and "at least 10" in short.get_data(as_text=True)
    assert client.post("/setup", data={"username": "owner", "password": "long-enough-1",
                                       "password_confirm": "long-enough-1"}).status_code == 400  # no token
    made = client.post("/setup", data={"csrf_token": token, "username": "owner", "password": "long-enough-1",
                                       "password_confirm": "long-enough-1"})
    assert made.status_code == 302
    assert client.get("/api/me").json == {"name": "owner", "kind": "user", "role": "admin"}
    other = app.client()
    assert other.get("/setup").status_code == 404
    assert other.post("/setup", data={"csrf_token": token, "username": "intruder", "password": "long-enough-1",
                                      "password_confirm": "long-enough-1"}).status_code in (400, 404)
    with session_scope(app.engine) as session:
        assert [u.username for u in session.query(User)] == ["owner"]


def test_every_html_form_post_needs_the_csrf_token(auth_app: AuthApp) -> None:
    """Every non-API route that accepts POST (ours and the dashboard's) refuses a POST without a token."""
    client = auth_app.signed_in()
    checked = []
    for rule in auth_app.app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") or not ({"POST", "PUT", "PATCH", "DELETE"} & (rule.methods or set())):
            continue
        url = re.sub(r"<any\(([^,)]+)[^>]*>", lambda m: m.group(1), re.sub(r"<int:[^>]+>", "1", rule.rule))
        url = re.sub(r"<[^>]+>", "x", url)
        for method in sorted({"POST", "PUT", "PATCH", "DELETE"} & (rule.methods or set())):
            response = client.open(url, method=method, data={"name": "x", "username": "x", "password": "x" * 12})
            assert response.status_code == 400, f"{method} {url} without a CSRF token: {response.status_code}"
            assert "CSRF" in response.get_data(as_text=True)
            checked.append(url)
    assert {"/login", "/logout", "/setup", "/admin/api-keys", "/admin/users", "/account/password"} <= set(checked)
    assert client.get("/api/me").status_code == 200


def test_security_headers_on_every_kind_of_response(auth_app: AuthApp) -> None:
    client = auth_app.client()
    for path in ("/login", "/api/health", "/api/jobs", "/auth/static/auth.css", "/no-such-page", "/account"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin", "no-referrer")


def test_pages_have_no_inline_script_or_style(auth_app: AuthApp) -> None:
    client = auth_app.signed_in()
    for path in ("/login", "/account", "/admin/api-keys", "/admin/users", "/logout"):
        html = client.get(path).get_data(as_text=True)
        assert not inline_code(html), f"{path}: {inline_code(html)}"
    assert inline_code('<p style="x">') and inline_code("<script>x()</script>") and inline_code('<a onclick="x">')


def test_admin_pages_are_for_admins(auth_app: AuthApp) -> None:
    reader = auth_app.signed_in("reader", "reader-password-for-tests")
    assert reader.get("/admin/api-keys").status_code == 403
    assert reader.get("/admin/users").status_code == 403
    assert reader.get("/account").status_code == 200
    token = csrf_token(reader, "/account")
    assert reader.post("/admin/api-keys", data={"csrf_token": token, "name": "x"}).status_code == 403


def test_api_key_page_shows_a_new_key_once_and_revokes(auth_app: AuthApp) -> None:
    client = auth_app.signed_in()
    token = csrf_token(client, "/admin/api-keys")
    created = client.post("/admin/api-keys", data={"csrf_token": token, "name": "gpu-box", "role": "node"})
    assert created.status_code == 201
    secret = re.search(r'value="(cs_[0-9a-f]{12}_[^"]+)"', created.get_data(as_text=True)).group(1)
    assert created.headers["Cache-Control"] == "no-store"
    listing = client.get("/admin/api-keys").get_data(as_text=True)
    assert "gpu-box" in listing and secret not in listing
    api = auth_app.client()
    assert api.get("/api/settings", headers={"X-API-Key": secret}).status_code == 200
    assert "never" not in re.search(r"gpu-box.*?</tr>", client.get("/admin/api-keys").get_data(as_text=True),
                                    re.S).group(0)  # last use is shown
    ids = re.findall(r'<td>gpu-box</td>.*?/admin/api-keys/(\d+)/revoke', listing, re.S)
    assert ids
    assert client.post(f"/admin/api-keys/{ids[0]}/revoke", data={"csrf_token": token}).status_code == 303
    assert api.get("/api/settings", headers={"X-API-Key": secret}).status_code == 401


def test_users_page_creates_and_signs_out_users(auth_app: AuthApp) -> None:
    client = auth_app.signed_in()
    token = csrf_token(client, "/admin/users")
    made = client.post("/admin/users", data={"csrf_token": token, "username": "dave", "password": "daves-password"})
    assert made.status_code == 201
    dave = auth_app.signed_in("dave", "daves-password")
    assert dave.get("/api/me").json["role"] == "user"
    user_id = re.search(r"<td>dave</td>.*?/admin/users/(\d+)/revoke_sessions", made.get_data(as_text=True),
                        re.S).group(1)
    assert client.post(f"/admin/users/{user_id}/make_admin", data={"csrf_token": token}).status_code == 303
    assert dave.get("/api/me").json["role"] == "admin"  # roles are read fresh on every request
    assert client.post(f"/admin/users/{user_id}/revoke_sessions", data={"csrf_token": token}).status_code == 303
    assert dave.get("/api/me").status_code == 401


def test_auth_disabled_shows_the_warning_everywhere(tmp_path: Path, sqlite_url: str) -> None:
    app = make_auth_app(tmp_path, sqlite_url, auth_enabled="false")
    client = app.client()
    assert client.get("/login").status_code == 302  # nothing to sign in to
    page = client.get("/admin/api-keys")
    assert page.status_code == 200
    assert "CODECSHIFT_AUTH_ENABLED=false" in page.get_data(as_text=True)
    with app.app.test_request_context("/"):
        from flask import render_template_string

        assert "turned off" in render_template_string("{{ auth_disabled_warning }}")
    enabled = make_auth_app(tmp_path / "on", f"sqlite:///{tmp_path / 'on.db'}")
    with enabled.app.test_request_context("/"):
        from flask import render_template_string

        assert render_template_string("{{ auth_disabled_warning }}") == "None"
