"""OIDC sign-in end to end against a real OpenID Connect provider on loopback (the
certified npm package oidc-provider, with its own sign-in pages): in headless
Chromium, and with plain HTTP for the sign-in rules and the signing algorithms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from codecshift import users
from codecshift.db import session_scope
from codecshift.models import User
from support.auth_app import AuthApp, make_auth_app
from support.browser import browser_page, screenshot
from support.cluster import ServerThread, free_port
from support.oidc_provider import CLIENT_SECRET, Provider, client_config, running_provider, sign_in_without_browser

ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@example.com", "email_verified": True, "preferred_username": "alice",
              "groups": ["media", "media-admins"]},
    "bob": {"email": "bob@example.com", "email_verified": True, "preferred_username": "bob", "groups": ["media"]},
    "mallory": {"email": "mallory@evil.test", "email_verified": True, "preferred_username": "mallory",
                "groups": ["media"]},
    "unverified": {"email": "eve@example.com", "email_verified": False, "groups": ["media"]},
    "outsider": {"email": "olga@example.com", "email_verified": True, "groups": ["other"]},
}


@dataclass
class Site:
    app: AuthApp
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def oidc_sites(tmp_path: Path, configs: dict[str, dict[str, str]],
               client_extra: dict[str, dict[str, Any]] | None = None) -> Iterator[tuple[Provider, dict[str, Site]]]:
    """One provider and one dashboard per config (each its own client id at the provider)."""
    op_port = free_port()
    issuer = f"http://127.0.0.1:{op_port}"
    sites: dict[str, Site] = {}
    with ExitStack() as stack:
        clients = []
        for name, env in configs.items():
            folder = tmp_path / name
            folder.mkdir()
            values = {"oidc_enabled": "true", "oidc_issuer": issuer, "oidc_client_id": name,
                      "oidc_client_secret": CLIENT_SECRET, "oidc_scopes": "openid email profile groups", **env}
            app = make_auth_app(folder, f"sqlite:///{folder / 'cs.db'}", **values)
            server = ServerThread(app.app).start()
            stack.callback(server.stop)
            sites[name] = Site(app, server)
            clients.append(client_config(server.url, client_id=name, **(client_extra or {}).get(name, {})))
        provider = stack.enter_context(running_provider(op_port, clients, ACCOUNTS, tmp_path))
        try:
            yield provider, sites
        except BaseException:
            print(provider.log())
            raise


def whoami(http: requests.Session, site: Site) -> dict[str, Any] | None:
    response = http.get(f"{site.url}/api/me", timeout=10)
    return response.json() if response.status_code == 200 else None


@pytest.mark.browser
def test_sign_in_and_out_through_the_providers_pages_in_chromium(tmp_path: Path) -> None:
    with oidc_sites(tmp_path, {"codecshift": {"oidc_admin_claim": "groups=media-admins",
                                              "oidc_provider_name": "Test IdP"}}) as (provider, sites):
        site = sites["codecshift"]
        with browser_page(site.url, artifacts="auth-oidc") as page:
            page.goto("/")
            page.wait_for_url("**/login**")
            assert page.locator("input[name=username]").count() == 1  # local sign-in is on beside OIDC
            page.click("text=Sign in with Test IdP")
            page.wait_for_url(f"{provider.issuer}/interaction/**")
            page.fill("input[name=login]", "alice")
            page.fill("input[name=password]", "whatever-the-provider-wants")
            page.click("button[type=submit]")
            page.wait_for_selector("text=Continue")  # the provider's consent page
            page.click("button[type=submit]")
            page.wait_for_url(f"{site.url}/")
            screenshot(page, "signed-in")
            me = page.evaluate("fetch('/api/me').then(r => r.json())")
            assert me == {"name": "alice", "kind": "user", "role": "admin"}
            assert page.locator("text=alice").first.is_visible()
            # Sign out: here, then at the provider (RP-initiated logout), then back to our sign-in page.
            page.click("button:has-text('Sign out')")
            page.wait_for_url(f"{provider.issuer}/session/end**")
            page.click("button[name=logout]")
            page.wait_for_url(f"{site.url}/login**")
            assert page.locator("text=You are signed out").is_visible()
            screenshot(page, "signed-out")
            assert page.evaluate("fetch('/api/me').then(r => r.status)") == 401
            # The provider's session ended too: single sign-on asks for the login again.
            page.click("text=Sign in with Test IdP")
            page.wait_for_url(f"{provider.issuer}/interaction/**")
            assert page.locator("input[name=login]").count() == 1
        with session_scope(site.app.engine) as session:
            alice = session.scalar(select(User).where(User.username == "alice"))
            assert alice.oidc_subject == "alice" and alice.is_admin and alice.password_hash is None
            assert alice.email == "alice@example.com"


def test_sign_in_rules_admin_claim_and_subject_matching(tmp_path: Path) -> None:
    configs = {
        "domains": {"oidc_allowed_domains": "example.com"},
        "claims": {"oidc_required_claim": "groups=media", "oidc_admin_claim": "groups=media-admins"},
    }
    with oidc_sites(tmp_path, configs) as (_provider, sites):
        domains, claims = sites["domains"], sites["claims"]
        with session_scope(domains.app.engine) as session:
            users.create_user(session, "bob", "a-local-bob-password")  # a local "bob" is never taken over

        def attempt(site: Site, login: str) -> tuple[requests.Response, dict[str, Any] | None]:
            http = requests.Session()
            final = sign_in_without_browser(http, site.url, login)
            return final, whoami(http, site)

        final, me = attempt(domains, "alice")
        assert final.status_code == 200 and me == {"name": "alice", "kind": "user", "role": "user"}
        final, me = attempt(domains, "mallory")
        assert final.status_code == 403 and "evil.test is not among the domains" in final.text and me is None
        final, me = attempt(domains, "unverified")
        assert final.status_code == 403 and "not verified" in final.text and me is None
        final, me = attempt(domains, "bob")
        assert me is not None and me["name"] == "bob-2"
        final, me = attempt(domains, "bob")  # the same subject is the same user again
        assert me is not None and me["name"] == "bob-2"
        with session_scope(domains.app.engine) as session:
            rows = {row.username: row for row in session.scalars(select(User))}
            assert rows["bob"].oidc_subject is None and rows["bob-2"].oidc_subject == "bob"

        final, me = attempt(claims, "outsider")
        assert final.status_code == 403 and "the groups claim does not allow" in final.text and me is None
        final, me = attempt(claims, "alice")
        assert me == {"name": "alice", "kind": "user", "role": "admin"}
        final, me = attempt(claims, "bob")
        assert me == {"name": "bob", "kind": "user", "role": "user"}


def test_only_the_listed_signing_algorithms_are_accepted(tmp_path: Path) -> None:
    configs = {
        "es-refused": {"oidc_algorithms": "RS256"},
        "es-accepted": {"oidc_algorithms": "ES256"},
        "hs-refused": {"oidc_algorithms": "RS256,ES256"},
        "hs-listed": {"oidc_algorithms": "HS256"},
    }
    extra = {"es-refused": {"id_token_signed_response_alg": "ES256"},
             "es-accepted": {"id_token_signed_response_alg": "ES256"},
             "hs-refused": {"id_token_signed_response_alg": "HS256"},
             "hs-listed": {"id_token_signed_response_alg": "HS256"}}
    with oidc_sites(tmp_path, configs, extra) as (_provider, sites):
        for name, accepted in (("es-refused", False), ("es-accepted", True), ("hs-refused", False),
                               ("hs-listed", True)):
            http = requests.Session()
            final = sign_in_without_browser(http, sites[name].url, "alice")
            me = whoami(http, sites[name])
            if accepted:
                assert me is not None and me["name"] == "alice", f"{name}: {final.status_code} {final.text[-800:]}"
            else:
                assert me is None and final.status_code == 403, name
                assert "Single sign-on failed" in final.text, name


def test_login_page_offers_both_ways_and_next_survives(tmp_path: Path) -> None:
    with oidc_sites(tmp_path, {"both": {}}) as (_provider, sites):
        site = sites["both"]
        page = requests.get(f"{site.url}/login?next=/jobs", timeout=10).text
        assert 'name="username"' in page and 'href="/login/oidc?next=/jobs"' in page
        http = requests.Session()
        http.get(f"{site.url}/login/oidc?next=/jobs", timeout=10)
        final = sign_in_without_browser(http, site.url, "bob")
        assert final.url.startswith(site.url) and whoami(http, site) is not None
        evil = requests.Session()
        sign_in_without_browser(evil, site.url, "bob")
        response = evil.get(f"{site.url}/login/oidc?next=//evil.example/", timeout=10, allow_redirects=False)
        assert response.headers["Location"] == "/"  # already signed in: straight to a safe target
