"""OpenID Connect sign-in with authlib's Flask client.

Discovery from the issuer, the authorization code flow with PKCE and a nonce,
ID tokens accepted only when signed with an algorithm listed in
CODECSHIFT_OIDC_ALGORITHMS, TLS verified (or a CA bundle, or, for development,
explicitly not: the switch reaches discovery, JWKS and token requests alike),
and RP-initiated logout where the provider offers an end_session_endpoint.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_login import current_user

from codecshift import users
from codecshift.config import ConfigError, InfraSettings
from web.auth import auth_blueprint as bp
from web.auth.headers import allow_form_target
from web.auth.sessions import client_address, safe_next, start_session
from web.auth.signin_rule import SignInRefused, check_sign_in, claim_matches, display_name
from web.extensions import db, infra

log = logging.getLogger(__name__)
CLIENT_KEY = "codecshift.oidc"
NEXT_KEY = "oidc_next"
TIMEOUT_SECONDS = 15


class VerifyingSession(OAuth2Session):
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's ``verify``
    unless each request names it: so every request to the provider names it."""

    def request(self, method: str, url: str, withhold_token: bool = False, auth: Any = None,
                **kwargs: Any) -> Any:
        kwargs["verify"] = self.verify
        return super().request(method, url, withhold_token=withhold_token, auth=auth, **kwargs)


class StrictOIDCApp(FlaskOAuth2App):
    """authlib's client, held to our algorithm list and to the configured issuer."""

    client_cls = VerifyingSession

    allowed_algorithms: list[str] = []
    expected_issuer: str = ""

    def load_server_metadata(self) -> dict[str, Any]:
        fresh = "_loaded_at" not in self.server_metadata
        metadata = super().load_server_metadata()
        if fresh:
            issuer = str(metadata.get("issuer", "")).rstrip("/")
            if issuer != self.expected_issuer.rstrip("/"):
                self.server_metadata.pop("_loaded_at", None)
                raise SignInRefused(f"the provider calls itself {issuer!r}, not the configured issuer "
                                    f"{self.expected_issuer!r}")
            # authlib verifies ID tokens against this list: make it ours, not the provider's.
            metadata["id_token_signing_alg_values_supported"] = list(self.allowed_algorithms)
        return metadata

    def parse_id_token(self, token: dict[str, Any], nonce: str, claims_options: Any = None,
                       claims_cls: Any = None, leeway: int = 120) -> Any:
        # An HS* ID token is keyed with the client secret, not with the provider's JWKS.
        g.oidc_hs_token = _header_alg(token.get("id_token", "")).startswith("HS")
        try:
            return super().parse_id_token(token, nonce, claims_options=claims_options, claims_cls=claims_cls,
                                          leeway=leeway)
        finally:
            g.oidc_hs_token = False

    def fetch_jwk_set(self, force: bool = False) -> dict[str, Any]:
        if not g.get("oidc_hs_token"):
            return super().fetch_jwk_set(force=force)
        # The algorithm list still decides: an HS* token is refused unless HS* is listed.
        if not self.client_secret:
            return {"keys": []}
        secret = base64.urlsafe_b64encode(self.client_secret.encode()).rstrip(b"=").decode()
        return {"keys": [{"kty": "oct", "k": secret}]}


def _header_alg(compact: str) -> str:
    try:
        header = compact.split(".", 1)[0]
        return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("alg", ""))
    except (ValueError, AttributeError):
        return ""


class _OAuth(OAuth):
    oauth2_client_cls = StrictOIDCApp


def tls_verify(settings: InfraSettings) -> bool | str:
    """What requests' ``verify`` gets for every call to the provider."""
    if not settings.oidc_verify_tls:
        return False
    if settings.oidc_ca_bundle:
        if not Path(settings.oidc_ca_bundle).is_file():
            raise ConfigError(f"CODECSHIFT_OIDC_CA_BUNDLE: no such file {settings.oidc_ca_bundle!r}")
        return settings.oidc_ca_bundle
    return True


def init_oidc(app: Flask) -> None:
    settings: InfraSettings = app.extensions["codecshift.settings"]
    app.extensions[CLIENT_KEY] = None
    if not (settings.auth_enabled and settings.oidc_enabled):
        return
    missing = [name for name, value in (("ISSUER", settings.oidc_issuer), ("CLIENT_ID", settings.oidc_client_id))
               if not value]
    if missing:
        raise ConfigError(f"CODECSHIFT_OIDC_{missing[0]}: needed when CODECSHIFT_OIDC_ENABLED is on")
    verify = tls_verify(settings)
    if verify is False:
        log.warning("!!! OIDC TLS VERIFICATION IS OFF (CODECSHIFT_OIDC_VERIFY_TLS=false): discovery, keys "
                    "and tokens are fetched from %s without checking its certificate. Development only!",
                    settings.oidc_issuer)
    oauth = _OAuth(app)
    client = oauth.register(
        "oidc",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret or None,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256", "verify": verify,
                       "default_timeout": TIMEOUT_SECONDS},
    )
    client.allowed_algorithms = list(settings.oidc_algorithms)
    client.expected_issuer = settings.oidc_issuer
    app.extensions[CLIENT_KEY] = client


def oidc_client() -> StrictOIDCApp | None:
    return current_app.extensions.get(CLIENT_KEY)


def _failure(message: str, status: int = 403) -> Any:
    settings = infra()
    return render_template("auth/login.html", error=message, notice=None, next="/", username="",
                           needs_setup=False, local_login=settings.local_login_enabled, oidc_login=True,
                           oidc_name=settings.oidc_provider_name), status


@bp.route("/login/oidc")
def oidc_login() -> Any:
    """Start single sign-on: off to the provider's sign-in page."""
    client = oidc_client()
    if client is None:
        return redirect(url_for("auth.login"))
    target = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(target)
    session[NEXT_KEY] = target
    try:
        return client.authorize_redirect(url_for("auth.oidc_callback", _external=True))
    except Exception as exc:
        log.exception("cannot start OIDC sign-in with %s", infra().oidc_issuer)
        return _failure(f"The sign-in provider cannot be reached ({type(exc).__name__}).", 502)


@bp.route("/login/oidc/callback")
def oidc_callback() -> Any:
    """The provider sends the browser back here with a code; the ID token decides who it is."""
    client = oidc_client()
    if client is None:
        return redirect(url_for("auth.login"))
    settings = infra()
    try:
        token = client.authorize_access_token()
        claims = dict(token.get("userinfo") or {})
        if not claims.get("sub"):
            raise SignInRefused("the provider sent no ID token")
        claims = _with_userinfo(client, token, claims)
        check_sign_in(claims, settings)
    except SignInRefused as exc:
        log.warning("OIDC sign-in refused from %s: %s", client_address(), exc)
        return _failure(f"Single sign-on refused: {exc}")
    except Exception as exc:
        log.warning("OIDC sign-in failed from %s: %s: %s", client_address(), type(exc).__name__, exc)
        return _failure(f"Single sign-on failed: {getattr(exc, 'description', None) or exc}")
    is_admin = claim_matches(claims, settings.oidc_admin_claim) if settings.oidc_admin_claim else None
    user = users.oidc_user(db(), str(claims["sub"]), preferred_name=display_name(claims),
                           email=claims.get("email"), is_admin=is_admin)
    db().commit()
    target = safe_next(session.get(NEXT_KEY))
    start_session(user, "oidc", id_token=token.get("id_token"))
    log.info("%s signed in through OIDC from %s", user.username, client_address())
    return redirect(target)


def _with_userinfo(client: StrictOIDCApp, token: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
    """Providers that keep scope claims out of the ID token serve them at userinfo; the
    ID token's own claims win, and a userinfo answer for another subject is refused."""
    metadata = client.load_server_metadata()
    if not metadata.get("userinfo_endpoint"):
        return claims
    info = dict(client.userinfo(token=token))
    if str(info.get("sub")) != str(claims["sub"]):
        raise SignInRefused("userinfo answered for another subject")
    return {**info, **claims}


def provider_logout_url(id_token: str | None, back_to: str) -> str | None:
    """The provider's end_session URL, or None when it has none (or cannot be reached)."""
    client = oidc_client()
    if client is None:
        return None
    try:
        metadata = client.load_server_metadata()
        if not metadata.get("end_session_endpoint"):
            return None
        allow_form_target(current_app, metadata["end_session_endpoint"])
        result = client.create_logout_url(post_logout_redirect_uri=back_to, id_token_hint=id_token,
                                          client_id=client.client_id)
    except Exception:
        log.warning("OIDC provider logout unavailable; signed out here only", exc_info=True)
        return None
    return result["url"]
