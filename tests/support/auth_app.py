"""A dashboard app for the authentication tests: fresh database, own secret key,
helpers to sign in through the real login form and to read CSRF tokens."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from codecshift import users
from codecshift.apikeys import create_key
from codecshift.config import InfraSettings, load_settings
from codecshift.db import engine_for, init_schema, session_scope
from codecshift.models import Node

ADMIN_PASSWORD = "admin-password-for-tests"
USER_PASSWORD = "reader-password-for-tests"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class AuthApp:
    app: Flask
    settings: InfraSettings
    admin_key: str
    node_key: str

    @property
    def engine(self) -> Any:
        return engine_for(self.settings.effective_database_url)

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def signed_in(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> FlaskClient:
        client = self.client()
        response = sign_in(client, username, password)
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        return client


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path)
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str, next_: str | None = None) -> Any:
    token = csrf_token(client)
    url = "/login" if next_ is None else f"/login?next={next_}"
    return client.post(url, data={"csrf_token": token, "username": username, "password": password})


def make_settings(tmp_path: Path, database_url: str, **env: str) -> InfraSettings:
    values = {"CODECSHIFT_DATA_DIR": str(tmp_path / "data"), "CODECSHIFT_DATABASE_URL": database_url,
              "CODECSHIFT_SECRET_KEY": secrets.token_urlsafe(32)}
    values.update({f"CODECSHIFT_{key.upper()}": value for key, value in env.items()})
    return load_settings(values)


def build_app(settings: InfraSettings) -> Flask:
    from tasks.app import create_celery
    from web.app import create_app

    return create_app(settings, engine=engine_for(settings.effective_database_url),
                      celery_app=create_celery(settings))


def make_auth_app(tmp_path: Path, database_url: str, *, with_users: bool = True, **env: str) -> AuthApp:
    """An app over a fresh schema with an admin, a read-only user and an admin and a node key."""
    settings = make_settings(tmp_path, database_url, **env)
    engine = engine_for(settings.effective_database_url)
    init_schema(engine)
    with session_scope(engine) as session:
        if with_users:
            users.create_user(session, "admin", ADMIN_PASSWORD, is_admin=True)
            users.create_user(session, "reader", USER_PASSWORD)
        admin_key = create_key(session, "script", "admin").secret
        node = create_key(session, "node-1", "node")
        session.add(Node(name="node-1", hostname="node-1", version="x", owner_key_id=node.id))  # registered with it
        node_key = node.secret
    return AuthApp(app=build_app(settings), settings=settings, admin_key=admin_key, node_key=node_key)


def inline_code(html: str) -> list[str]:
    """What the CSP would block: inline scripts, style elements and attributes, event handlers."""
    found = [f"<script{attrs}>" for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I)
             if "src=" not in attrs or body.strip()]
    found += re.findall(r"<style\b[^>]*>", html, re.I)
    found += re.findall(r"<[a-z][^>]*\sstyle=\"[^\"]*\"", html, re.I)
    found += re.findall(r"<[a-z][^>]*\son[a-z]+=\"[^\"]*\"", html, re.I)
    found += re.findall(r"href=\"javascript:[^\"]*\"", html, re.I)
    return found
