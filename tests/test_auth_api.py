"""/api/* needs an API key or a signed-in session: every route refuses a missing and a
wrong key, node keys reach only node routes, revoked keys stop at once, and
session-authenticated changes need the CSRF token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codecshift.apikeys import revoke_key
from codecshift.db import session_scope
from codecshift.models import ApiKey
from support.auth_app import AuthApp, csrf_token, make_auth_app
from web.api.routing import ENDPOINTS

# Routes anyone may call. A new public route must be added here on purpose.
PUBLIC = {("GET", "/api/health"), ("GET", "/api/openapi.json")}
WRONG_KEYS = ["", "nonsense", "cs_000000000000_" + "A" * 43, "Bearer something"]


@pytest.fixture
def auth_app(tmp_path: Path, sqlite_url: str) -> AuthApp:
    return make_auth_app(tmp_path, sqlite_url)


def _fill(rule: str) -> str:
    """A concrete URL for a rule: ids 1, names 'node-1', the first of any(...) choices."""
    rule = re.sub(r"<int:[^>]+>", "1", rule)
    rule = re.sub(r"<any\(([^,)]+)[^>]*>", lambda m: m.group(1), rule)
    rule = re.sub(r"<path:[^>]+>", "x", rule)
    return re.sub(r"<(?:string:)?[^>]+>", "node-1", rule)


def api_routes(auth_app: AuthApp) -> list[tuple[str, str, str]]:
    """(method, url, role) for every rule of the api blueprint, declared or not."""
    roles = {f"api.{endpoint.name}": endpoint.role for endpoint in ENDPOINTS}
    routes = []
    for rule in auth_app.app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, _fill(rule.rule), roles.get(rule.endpoint, "admin")))
    return routes


def test_the_route_list_covers_every_declared_endpoint(auth_app: AuthApp) -> None:
    routes = api_routes(auth_app)
    assert len(routes) >= len(ENDPOINTS) > 30
    public = {(method, re.sub(r"<[^>]+>", "*", f"/api{e.rule}")) for e in ENDPOINTS if e.role == "public"
              for method in e.methods}
    assert public <= PUBLIC, f"new public API routes need a deliberate decision: {public - PUBLIC}"


def test_every_route_refuses_a_missing_and_a_wrong_key(auth_app: AuthApp) -> None:
    client = auth_app.client()
    checked = 0
    for method, url, _role in api_routes(auth_app):
        if (method, url) in PUBLIC:
            assert client.open(url, method=method).status_code == 200
            continue
        response = client.open(url, method=method, json={})
        assert response.status_code == 401, f"{method} {url} without a key: {response.status_code}"
        assert response.json["error"]["code"] == "unauthorized"
        for wrong in WRONG_KEYS:
            response = client.open(url, method=method, json={}, headers={"X-API-Key": wrong})
            assert response.status_code == 401, f"{method} {url} with key {wrong!r}: {response.status_code}"
        checked += 1
    assert checked > 30


def test_a_node_key_reaches_only_node_routes(auth_app: AuthApp) -> None:
    client = auth_app.client()
    for method, url, role in api_routes(auth_app):
        if (method, url) in PUBLIC:
            continue
        response = client.open(url, method=method, json={}, headers={"X-API-Key": auth_app.node_key})
        if role == "node":
            assert response.status_code not in (401, 403), f"node key refused at {method} {url}"
        else:
            assert response.status_code == 403, f"node key at {role} route {method} {url}: {response.status_code}"


def test_an_admin_key_reaches_every_route(auth_app: AuthApp) -> None:
    client = auth_app.client()
    for method, url, _role in api_routes(auth_app):
        if method != "GET":
            continue  # changes would act on the data; passing the gate is what is checked here
        response = client.open(url, method=method, headers={"X-API-Key": auth_app.admin_key})
        assert response.status_code not in (401, 403), f"admin key refused at {method} {url}"


def test_a_signed_in_reader_reads_but_cannot_change(auth_app: AuthApp) -> None:
    client = auth_app.signed_in("reader", "reader-password-for-tests")
    token = csrf_token(client, "/account")
    for method, url, role in api_routes(auth_app):
        if (method, url) in PUBLIC:
            continue
        response = client.open(url, method=method, json={}, headers={"X-CSRFToken": token})
        if role == "admin":
            assert response.status_code == 403, f"reader at admin route {method} {url}: {response.status_code}"
        elif role == "read":
            assert response.status_code not in (401, 403), f"reader refused at {method} {url}"
        else:  # node routes are for node keys and admins
            assert response.status_code == 403, f"reader at node route {method} {url}"


def test_a_revoked_key_stops_working_at_once(auth_app: AuthApp) -> None:
    client = auth_app.client()
    node = {"X-API-Key": auth_app.node_key}
    assert client.get("/api/settings", headers=node).status_code == 200
    keys = client.get("/api/apikeys", headers={"X-API-Key": auth_app.admin_key}).json["items"]
    node_id = next(key["id"] for key in keys if key["name"] == "node-1")
    revoked = client.post(f"/api/apikeys/{node_id}/revoke", headers={"X-API-Key": auth_app.admin_key})
    assert revoked.status_code == 200 and revoked.json["active"] is False
    assert client.get("/api/settings", headers=node).status_code == 401
    # Revoked outside the web process (the CLI does this): the next request already fails.
    with session_scope(auth_app.engine) as session:
        admin_id = next(row.id for row in session.query(ApiKey) if row.role == "admin")
    admin = {"X-API-Key": auth_app.admin_key}
    assert client.get("/api/nodes", headers=admin).status_code == 200
    with session_scope(auth_app.engine) as session:
        assert revoke_key(session, admin_id)
    assert client.get("/api/nodes", headers=admin).status_code == 401


def test_key_use_is_recorded(auth_app: AuthApp) -> None:
    client = auth_app.client()
    client.get("/api/settings", headers={"X-API-Key": auth_app.node_key})
    listed = client.get("/api/apikeys", headers={"X-API-Key": auth_app.admin_key}).json["items"]
    keys = {key["name"]: key for key in listed}
    assert keys["node-1"]["last_used_at"] is not None


def test_api_keys_over_json(auth_app: AuthApp) -> None:
    client = auth_app.client()
    admin = {"X-API-Key": auth_app.admin_key}
    created = client.post("/api/apikeys", json={"name": "nas", "role": "node"}, headers=admin)
    assert created.status_code == 201
    secret = created.json["secret"]
    assert secret.startswith(created.json["prefix"] + "_")
    listed = client.get("/api/apikeys", headers=admin)
    assert secret not in listed.get_data(as_text=True)
    assert "key_hash" not in listed.get_data(as_text=True)
    assert client.get("/api/settings", headers={"X-API-Key": secret}).status_code == 200
    bad = client.post("/api/apikeys", json={"name": "x", "role": "root"}, headers=admin)
    assert bad.status_code == 400 and bad.json["error"]["field"] == "role"
    key_id = created.json["id"]
    assert client.delete(f"/api/apikeys/{key_id}", headers=admin).status_code == 200
    assert client.get("/api/settings", headers={"X-API-Key": secret}).status_code == 401
    assert client.delete(f"/api/apikeys/{key_id}", headers=admin).status_code == 404


def test_users_over_json(auth_app: AuthApp) -> None:
    client = auth_app.client()
    admin = {"X-API-Key": auth_app.admin_key}
    created = client.post("/api/users", json={"username": "carol"}, headers=admin)
    assert created.status_code == 201
    password = created.json["password"]
    assert len(password) >= 20
    listed = client.get("/api/users", headers=admin)
    text = listed.get_data(as_text=True)
    assert "carol" in text and password not in text and "argon2" not in text
    carol = auth_app.signed_in("carol", password)
    assert carol.get("/api/me").json == {"name": "carol", "kind": "user", "role": "user"}
    user_id = created.json["id"]
    patched = client.patch(f"/api/users/{user_id}", json={"password": "a-new-password-1"}, headers=admin)
    assert patched.status_code == 200
    assert carol.get("/api/me").status_code == 401  # the password change ended her session
    short = client.patch(f"/api/users/{user_id}", json={"password": "short"}, headers=admin)
    assert short.status_code == 400 and short.json["error"]["field"] == "password"
    duplicate = client.post("/api/users", json={"username": "Carol", "password": "x" * 12}, headers=admin)
    assert duplicate.status_code == 400
    admins = [u for u in client.get("/api/users", headers=admin).json["items"] if u["is_admin"]]
    assert len(admins) == 1
    last = client.delete(f"/api/users/{admins[0]['id']}", headers=admin)
    assert last.status_code == 400 and "last admin" in last.json["error"]["message"]
    assert client.delete(f"/api/users/{user_id}", headers=admin).status_code == 200


def test_revoking_a_users_sessions_signs_them_out(auth_app: AuthApp) -> None:
    reader = auth_app.signed_in("reader", "reader-password-for-tests")
    assert reader.get("/api/me").status_code == 200
    admin = {"X-API-Key": auth_app.admin_key}
    user_id = next(u["id"] for u in auth_app.client().get("/api/users", headers=admin).json["items"]
                   if u["username"] == "reader")
    assert auth_app.client().post(f"/api/users/{user_id}/revoke-sessions", headers=admin).status_code == 200
    assert reader.get("/api/me").status_code == 401


def test_session_changes_need_the_csrf_header(auth_app: AuthApp) -> None:
    client = auth_app.signed_in()
    body = {"name": "from-session", "role": "node"}
    missing = client.post("/api/apikeys", json=body)
    assert missing.status_code == 403 and missing.json["error"]["code"] == "csrf_failed"
    wrong = client.post("/api/apikeys", json=body, headers={"X-CSRFToken": "not-the-token"})
    assert wrong.status_code == 403
    other = auth_app.signed_in()  # a token from another session does not fit this one
    foreign = csrf_token(other, "/account")
    assert client.post("/api/apikeys", json=body, headers={"X-CSRFToken": foreign}).status_code == 403
    with session_scope(auth_app.engine) as session:
        assert all(row.name != "from-session" for row in session.query(ApiKey))
    token = csrf_token(client, "/account")
    assert client.post("/api/apikeys", json=body, headers={"X-CSRFToken": token}).status_code == 201
    assert client.get("/api/apikeys").status_code == 200  # reads need no token


def test_auth_disabled_treats_everyone_as_admin_but_refuses_cross_site_changes(tmp_path: Path,
                                                                                sqlite_url: str) -> None:
    app = make_auth_app(tmp_path, sqlite_url, auth_enabled="false")
    client = app.client()
    assert client.get("/api/apikeys").status_code == 200
    assert client.post("/api/apikeys", json={"name": "k"}).status_code == 201
    cross = client.post("/api/apikeys", json={"name": "k2"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    foreign = client.post("/api/apikeys", json={"name": "k3"}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_auth_off_refuses_cross_site_changes_even_with_a_key_in_the_url(tmp_path: Path, sqlite_url: str) -> None:
    app = make_auth_app(tmp_path, sqlite_url, auth_enabled="false")
    client = app.client()
    event = {"eventType": "Test", "series": {"title": "Test"}, "episodes": []}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        for url in ("/api/webhooks/sonarr?apikey=anything", "/api/webhooks/sonarr"):
            refused = client.post(url, json=event, headers=headers)
            assert refused.status_code == 403 and refused.json["error"]["code"] == "cross_site", (url, headers)
        with_key = client.post("/api/queue/pause", headers={**headers, "X-API-Key": "anything"})
        assert with_key.status_code == 403
    # Senders are servers: no Origin, no Sec-Fetch-Site, and the key wherever they put it.
    assert client.post("/api/webhooks/sonarr?apikey=anything", json=event).status_code == 200
    assert client.post("/api/webhooks/sonarr", json=event,
                       headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_unknown_api_routes_answer_404_to_everyone(auth_app: AuthApp) -> None:
    client = auth_app.client()
    for method, url in (("GET", "/api/nope"), ("POST", "/api/libraries/1/nope"), ("DELETE", "/api/jobs/x")):
        response = client.open(url, method=method)
        assert response.status_code == 404, (method, url)
        assert response.json["error"]["code"] == "not_found"
    assert client.put("/api/health").status_code == 405


def test_a_broker_url_the_rate_limiter_cannot_use_falls_back_to_the_database(
        tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from support.auth_app import build_app
    from web.auth.ratelimit import LIMITER_KEY

    base = make_auth_app(tmp_path, sqlite_url, login_rate_limit="2 per minute")
    # A Redis socket as some deployments spell it; `limits` has no "unix" scheme.
    settings = base.settings.model_copy(update={"broker_url": "unix:///run/redis/redis.sock"})
    with caplog.at_level("WARNING", logger="web.auth.ratelimit"):
        app = build_app(settings)
    assert app.extensions[LIMITER_KEY].kind == "database"
    assert any("counting in the database instead" in record.getMessage() for record in caplog.records)
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 200
    for _ in range(2):
        client.post("/login", data={"username": "admin", "password": "wrong-password",
                                    "csrf_token": csrf_token(client, "/login")})
    limited = client.post("/login", data={"username": "admin", "password": "wrong-password",
                                          "csrf_token": csrf_token(client, "/login")})
    assert limited.status_code == 429
