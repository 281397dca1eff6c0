"""TLS towards the OIDC provider: verified by default, a CA bundle makes a private CA
work, and CODECSHIFT_OIDC_VERIFY_TLS=false really reaches discovery, the JWKS and
the token request. The provider here is a small HTTPS server with a self-signed
certificate that records what reached it."""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codecshift.config import ConfigError
from support.auth_app import make_auth_app
from support.tls import self_signed
from web.auth.oidc import oidc_client


class TLSProvider:
    """Discovery, JWKS and token endpoints over HTTPS; ``hits`` lists the paths that got through."""

    def __init__(self, folder: Path) -> None:
        self.cert, key = self_signed(folder, "test provider")
        self.hits: list[str] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _answer(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                provider.hits.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    base = provider.issuer
                    self._answer({"issuer": base, "authorization_endpoint": f"{base}/auth",
                                  "token_endpoint": f"{base}/token", "jwks_uri": f"{base}/jwks",
                                  "response_types_supported": ["code"], "subject_types_supported": ["public"],
                                  "id_token_signing_alg_values_supported": ["RS256"]})
                else:
                    self._answer({"keys": []})

            def do_POST(self) -> None:
                provider.hits.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer({"access_token": "a", "token_type": "Bearer"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.issuer = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TLSProvider:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[TLSProvider]:
    with TLSProvider(tmp_path) as running:
        yield running


def _app(tmp_path: Path, provider: TLSProvider, name: str, **env: str):  # type: ignore[no-untyped-def]
    folder = tmp_path / name
    folder.mkdir()
    return make_auth_app(folder, f"sqlite:///{folder / 'cs.db'}", oidc_enabled="true", oidc_issuer=provider.issuer,
                         oidc_client_id="codecshift", oidc_client_secret="s" * 32, **env)


def _all_three(app) -> list[str]:  # type: ignore[no-untyped-def]
    """Discovery (through the sign-in start), the JWKS and a token request; what failed."""
    failed = []
    client = app.client()
    start = client.get("/login/oidc")
    if start.status_code != 302:
        failed.append("discovery")
    with app.app.test_request_context("/"):
        oidc = oidc_client()
        for name, call in (("jwks", lambda: oidc.fetch_jwk_set(force=True)),
                           ("token", lambda: oidc.fetch_access_token(code="c", redirect_uri="https://x/cb"))):
            try:
                call()
            except Exception as exc:
                if "CERTIFICATE_VERIFY_FAILED" not in str(exc) and "SSLError" not in type(exc).__name__:
                    raise
                failed.append(name)
    return failed


def test_verification_is_on_by_default(tmp_path: Path, provider: TLSProvider) -> None:
    app = _app(tmp_path, provider, "default")
    start = app.client().get("/login/oidc")
    assert start.status_code == 502 and "cannot be reached" in start.get_data(as_text=True)
    assert provider.hits == []  # nothing got past the TLS handshake
    with app.app.test_request_context("/"):
        client = oidc_client()
        client.server_metadata.update({"jwks_uri": f"{provider.issuer}/jwks", "issuer": provider.issuer,
                                       "token_endpoint": f"{provider.issuer}/token", "_loaded_at": 1})
    assert _all_three(app) == ["discovery", "jwks", "token"]
    assert provider.hits == []


def test_a_ca_bundle_makes_the_private_certificate_trusted(tmp_path: Path, provider: TLSProvider) -> None:
    app = _app(tmp_path, provider, "bundle", oidc_ca_bundle=str(provider.cert))
    assert _all_three(app) == []
    assert provider.hits[0] == "/.well-known/openid-configuration"
    assert "/jwks" in provider.hits and "/token" in provider.hits


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_turning_verification_off_reaches_every_request_and_warns(tmp_path: Path, provider: TLSProvider,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        app = _app(tmp_path, provider, "off", oidc_verify_tls="false")
    assert any("OIDC TLS VERIFICATION IS OFF" in record.getMessage() for record in caplog.records)
    assert _all_three(app) == []
    assert {"/.well-known/openid-configuration", "/jwks", "/token"} <= set(provider.hits)


def test_a_missing_ca_bundle_stops_the_start(tmp_path: Path, provider: TLSProvider) -> None:
    with pytest.raises(ConfigError, match="CODECSHIFT_OIDC_CA_BUNDLE"):
        _app(tmp_path, provider, "missing", oidc_ca_bundle=str(tmp_path / "nope.pem"))


def test_a_provider_naming_another_issuer_is_refused(tmp_path: Path, provider: TLSProvider) -> None:
    app = make_auth_app(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", oidc_enabled="true",
                        oidc_issuer=provider.issuer + "/realms/other", oidc_client_id="c",
                        oidc_ca_bundle=str(provider.cert))
    response = app.client().get("/login/oidc")
    assert response.status_code == 502
