"""Infrastructure settings from CODECSHIFT_* environment variables.

Everything a process needs before it can reach the database lives here (where
the database and broker are, the data folder, secrets, authentication
switches). Behaviour settings (codecs, quality, schedules) live in the
database instead, see ``codecshift.registry``. The defaults describe embedded
mode: SQLite and Kombu's filesystem transport inside one data folder.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "CODECSHIFT_"
DATABASE_SCHEMES = ("sqlite", "postgresql")
BROKER_SCHEMES = ("redis", "rediss", "sentinel", "filesystem", "amqp", "amqps", "pyamqp", "memory")


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line naming the variable."""


def _split_list(value: object) -> object:
    """Accept "a, b,c" from the environment as a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], BeforeValidator(_split_list)]


class InfraSettings(BaseModel):
    """One typed object for every CODECSHIFT_* variable; see docs/configuration.md."""

    model_config = ConfigDict(extra="ignore", validate_default=True, frozen=True)

    data_dir: Path = Field(Path("codecshift-data"), description="Folder for the SQLite database, "
                           "the filesystem broker, the generated secret key and the sample library.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in the data folder.")
    broker_url: str = Field("", description="Celery broker URL; empty means Kombu's filesystem "
                            "transport in the data folder.")
    secret_key: str = Field("", description="Signs sessions and CSRF tokens; generated once and kept "
                            "in the data folder when empty.")
    dashboard_url: str = Field("http://127.0.0.1:8080", description="Where nodes reach the dashboard API.")
    api_key: str = Field("", description="The API key a node sends as X-API-Key.")
    auth_enabled: bool = Field(True, description="Require sign-in and API keys. Turning it off shows "
                               "a warning banner on every page.")
    local_login_enabled: bool = Field(True, description="Allow sign-in with a local user and password.")
    oidc_enabled: bool = Field(False, description="Allow sign-in through an OpenID Connect provider.")
    oidc_issuer: str = Field("", description="The provider's issuer URL (discovery document base).")
    oidc_client_id: str = Field("", description="OIDC client id.")
    oidc_client_secret: str = Field("", description="OIDC client secret.")
    oidc_scopes: str = Field("openid email profile", description="Scopes requested at sign-in.")
    oidc_algorithms: CommaList = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"],
        description="ID token signing algorithms accepted; nothing else is.")
    oidc_verify_tls: bool = Field(True, description="Verify the provider's TLS certificate. Turn off "
                                  "for development only.")
    oidc_ca_bundle: str = Field("", description="A CA bundle file for the provider's certificate.")
    oidc_allowed_domains: CommaList = Field(default_factory=list, description="Email domains allowed "
                                            "to sign in through OIDC; empty allows any.")
    oidc_required_claim: str = Field("", description="NAME=VALUE a user's ID token must carry "
                                     "(a list claim such as groups may contain the value).")
    oidc_provider_name: str = Field("Single sign-on", description="Label of the sign-in button.")
    oidc_admin_claim: str = Field("", description="NAME=VALUE that makes an OIDC user an admin.")
    session_lifetime_hours: float = Field(12.0, gt=0, le=2160, description="How long a sign-in lasts; "
                                          "after it the next page asks to sign in again.")
    login_rate_limit: str = Field("10 per minute;50 per hour", description="Sign-in attempts allowed "
                                  "per client address and per user name (rate-limit syntax, ';' between).")
    proxy_count: int = Field(0, ge=0, le=10, description="Reverse proxies in front of the dashboard "
                             "whose X-Forwarded-* headers are trusted.")
    web_host: str = Field("127.0.0.1", description="Address the dashboard listens on.")
    web_port: int = Field(8080, ge=1, le=65535, description="Port the dashboard listens on.")
    web_workers: int = Field(2, ge=1, le=64, description="gunicorn worker processes.")
    node_name: str = Field("", description="A node's name; defaults to the host name.")
    encoders: CommaList = Field(default_factory=list, description="Force a node's encoder list "
                                "(e.g. libx265,hevc_nvenc) instead of probing the hardware.")
    path_mappings: CommaList = Field(default_factory=list, description="A node's own path "
                                     "mappings, FROM=TO pairs separated by commas.")
    log_level: str = Field("INFO", description="Log level of every process.")
    flower_port: int = Field(5555, ge=1, le=65535, description="Port Flower listens on.")
    flower_basic_auth: str = Field("", description="user:password pairs for Flower, comma separated.")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        if url.get_backend_name() not in DATABASE_SCHEMES:
            raise ValueError(f"unsupported database {url.get_backend_name()!r}; use sqlite or postgresql")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if not value:
            return value
        scheme = urlsplit(value).scheme
        if scheme not in BROKER_SCHEMES:
            raise ValueError(f"unsupported broker scheme {scheme!r}; use redis:// or filesystem://")
        return value

    @field_validator("dashboard_url")
    @classmethod
    def _dashboard_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("oidc_required_claim", "oidc_admin_claim")
    @classmethod
    def _claim_rule(cls, value: str) -> str:
        if value and "=" not in value:
            raise ValueError("must be NAME=VALUE")
        return value

    @field_validator("oidc_algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        known = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                 "EdDSA", "Ed25519", "HS256", "HS384", "HS512"}
        if not value:
            raise ValueError("list at least one signing algorithm")
        for name in value:
            if name.lower() == "none":
                raise ValueError("'none' is never accepted: ID tokens must be signed")
            if name not in known:
                raise ValueError(f"unknown signing algorithm {name!r}; use e.g. RS256 or ES256")
        return value

    @field_validator("login_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            if not parse_many(value):
                raise ValueError
        except ValueError:
            raise ValueError("must be like '10 per minute;50 per hour'") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    # -- derived values ---------------------------------------------------

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'codecshift.db'}"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def is_embedded_broker(self) -> bool:
        return self.effective_broker_url.startswith("filesystem://")

    @property
    def broker_folder(self) -> Path:
        return self.data_path / "broker"

    def effective_secret_key(self) -> str:
        """The configured key, or one generated once and kept in the data folder."""
        if self.secret_key:
            return self.secret_key
        key_file = self.data_path / "secret_key"
        if key_file.is_file():
            return key_file.read_text(encoding="utf-8").strip()
        self.data_path.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
        return key

    def parsed_path_mappings(self) -> list[tuple[str, str]]:
        pairs = []
        for item in self.path_mappings:
            source, _, target = item.partition("=")
            pairs.append((source, target))
        return pairs


def _describe(error: dict) -> str:
    """Turn one pydantic error into 'CODECSHIFT_X: message (got 'value')'."""
    field = str(error["loc"][0]) if error.get("loc") else "?"
    message = error["msg"].removeprefix("Value error, ")
    raw = error.get("input")
    shown = f" (got {raw!r})" if isinstance(raw, str | int | float) else ""
    return f"{ENV_PREFIX}{field.upper()}: {message}{shown}"


def load_settings(environ: dict[str, str] | None = None) -> InfraSettings:
    """Parse the environment; a bad value raises ConfigError naming the variable."""
    source = os.environ if environ is None else environ
    values = {key[len(ENV_PREFIX):].lower(): value for key, value in source.items()
              if key.startswith(ENV_PREFIX)}
    known = set(InfraSettings.model_fields)
    values = {key: value for key, value in values.items() if key in known}
    try:
        return InfraSettings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0])) from None


def env_names() -> list[str]:
    """Every variable name the infrastructure settings read."""
    return [f"{ENV_PREFIX}{name.upper()}" for name in InfraSettings.model_fields]
