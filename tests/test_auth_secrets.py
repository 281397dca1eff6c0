"""No secret in any response: with a Plex token, notification URLs, API keys, users and
an OIDC client secret in place, every GET route and page (API and dashboard, as an
admin, a reader, an API key and nobody) is fetched and searched for them. The same
sweep checks that no page carries code the Content-Security-Policy would block."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from codecshift import settings_store
from codecshift.db import session_scope
from codecshift.models import User
from support.auth_app import ADMIN_PASSWORD, USER_PASSWORD, AuthApp, csrf_token, inline_code, make_auth_app

PLEX_TOKEN = "PlexTok3n-s3cr3t-xyzzy"
NOTIFY_URL = "tgram://123456:NotifySecretToken987/55555"
OIDC_SECRET = "oidc-client-secret-never-shown-42"


@pytest.fixture
def loaded(tmp_path: Path, sqlite_url: str) -> tuple[AuthApp, dict[str, str]]:
    app = make_auth_app(tmp_path, sqlite_url, oidc_enabled="true", oidc_issuer="http://127.0.0.1:9/issuer",
                        oidc_client_id="codecshift", oidc_client_secret=OIDC_SECRET)
    client = app.client()
    admin = {"X-API-Key": app.admin_key}
    root = tmp_path / "media"
    root.mkdir()
    library = client.post("/api/libraries", json={"name": "Movies", "roots": [str(root)]}, headers=admin)
    assert library.status_code == 201
    registered = client.post("/api/nodes/register", headers={"X-API-Key": app.node_key},
                             json={"name": "node-1", "hostname": "box", "version": "0.1.0", "queues": ["cpu"],
                                   "concurrency": {"cpu": 1}, "capabilities": {}})
    assert registered.status_code in (200, 201), registered.get_data(as_text=True)
    changed = client.patch("/api/settings", json={"values": {"notify_urls": [NOTIFY_URL]}}, headers=admin)
    assert changed.status_code == 200
    assert NOTIFY_URL not in changed.get_data(as_text=True)
    with session_scope(app.engine) as session:  # as the Plex link stores it (the settings API refuses it)
        settings_store.set_many(session, {"plex_url": "http://127.0.0.1:9", "plex_token": PLEX_TOKEN,
                                          "plex_machine_identifier": "machine-1"})
    extra = client.post("/api/apikeys", json={"name": "extra", "role": "admin"}, headers=admin)
    with session_scope(app.engine) as session:
        assert settings_store.load_all(session)["plex_token"] == PLEX_TOKEN  # stored, only never shown
        hashes = [row.password_hash for row in session.query(User) if row.password_hash]
    secrets = {"plex token": PLEX_TOKEN, "notify url": NOTIFY_URL, "oidc client secret": OIDC_SECRET,
               "admin key": app.admin_key, "node key": app.node_key, "created key": extra.json["secret"],
               "admin password": ADMIN_PASSWORD, "reader password": USER_PASSWORD,
               "secret key": app.app.config["SECRET_KEY"]}
    for n, value in enumerate(hashes):
        secrets[f"password hash {n}"] = value
        secrets[f"password hash {n} digest"] = value.rsplit("$", 1)[-1]
    return app, secrets


def get_routes(app: AuthApp) -> list[str]:
    urls = []
    for rule in app.app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()) or rule.endpoint.endswith("static"):
            continue
        url = re.sub(r"<int:[^>]+>", "1", rule.rule)
        url = re.sub(r"<any\(([^,)]+)[^>]*>", lambda m: m.group(1), url)
        urls.append(re.sub(r"<(?:string:|path:)?[^>]+>", "node-1", url))
    return sorted(set(urls))


def _sweep(client: FlaskClient, urls: list[str], secrets: dict[str, str], extra_secret: str | None) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for url in urls:
        response = client.get(url)
        body = response.get_data(as_text=True)
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "set-cookie")
        for name, value in secrets.items():
            assert value not in body and value not in headers, f"{name} appears in GET {url}"
        if extra_secret:
            assert extra_secret not in body, f"the session cookie appears in GET {url}"
        seen[url] = response
    return seen


def test_no_secret_in_any_response(loaded: tuple[AuthApp, dict[str, str]]) -> None:
    app, secrets = loaded
    urls = get_routes(app)
    assert {"/login", "/admin/api-keys", "/admin/users", "/api/settings", "/api/apikeys", "/api/users"} <= set(urls)
    admin = app.signed_in()
    cookie = admin.get_cookie("codecshift_session").value
    answered = _sweep(admin, urls, secrets, cookie)
    assert sum(1 for r in answered.values() if r.status_code == 200) > 15
    reader = app.signed_in("reader", USER_PASSWORD)
    _sweep(reader, urls, secrets, reader.get_cookie("codecshift_session").value)
    for key in (app.admin_key, app.node_key):
        client = app.client()
        client.environ_base["HTTP_X_API_KEY"] = key
        _sweep(client, urls, secrets, None)
    _sweep(app.client(), urls, secrets, None)


def test_settings_say_only_whether_a_secret_is_set(loaded: tuple[AuthApp, dict[str, str]]) -> None:
    app, _ = loaded
    values = app.client().get("/api/settings", headers={"X-API-Key": app.admin_key}).json["settings"]
    assert values["plex_token"] == {"set": True} and values["notify_urls"] == {"set": True}


def test_no_page_carries_code_the_csp_would_block(loaded: tuple[AuthApp, dict[str, str]]) -> None:
    app, _ = loaded
    admin = app.signed_in()
    for url in get_routes(app):
        if url.startswith("/api/"):
            continue
        response = admin.get(url)
        if response.mimetype == "text/html":
            blocked = inline_code(response.get_data(as_text=True))
            assert not blocked, f"{url}: {blocked}"


def test_the_new_key_page_is_the_only_place_a_key_shows(loaded: tuple[AuthApp, dict[str, str]]) -> None:
    app, _ = loaded
    admin = app.signed_in()
    token = csrf_token(admin, "/admin/api-keys")
    created = admin.post("/admin/api-keys", data={"csrf_token": token, "name": "once", "role": "node"})
    secret = re.search(r'value="(cs_[^"]+)"', created.get_data(as_text=True)).group(1)
    assert created.headers["Cache-Control"] == "no-store"
    for url in get_routes(app):
        assert secret not in admin.get(url).get_data(as_text=True), url
