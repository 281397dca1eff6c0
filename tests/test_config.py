"""Infrastructure settings from CODECSHIFT_* variables: defaults, every variable, bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from codecshift.config import ConfigError, InfraSettings, env_names, load_settings


def test_defaults_describe_embedded_mode(tmp_path: Path) -> None:
    settings = load_settings({"CODECSHIFT_DATA_DIR": str(tmp_path)})
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'codecshift.db'}"
    assert settings.effective_broker_url == "filesystem://"
    assert settings.is_embedded_broker
    assert settings.auth_enabled is True
    assert settings.local_login_enabled is True
    assert settings.oidc_enabled is False
    assert settings.oidc_verify_tls is True
    assert settings.dashboard_url == "http://127.0.0.1:8080"
    assert "RS256" in settings.oidc_algorithms and "none" not in settings.oidc_algorithms


def test_default_data_folder_is_codecshift_data() -> None:
    assert load_settings({}).data_dir == Path("codecshift-data")


def test_secret_key_generated_once_and_kept(tmp_path: Path) -> None:
    settings = load_settings({"CODECSHIFT_DATA_DIR": str(tmp_path / "data")})
    first = settings.effective_secret_key()
    assert len(first) >= 40
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600
    again = load_settings({"CODECSHIFT_DATA_DIR": str(tmp_path / "data")}).effective_secret_key()
    assert again == first


def test_given_secret_key_wins(tmp_path: Path) -> None:
    settings = load_settings({"CODECSHIFT_DATA_DIR": str(tmp_path), "CODECSHIFT_SECRET_KEY": "s3cret"})
    assert settings.effective_secret_key() == "s3cret"
    assert not (tmp_path / "secret_key").exists()


GOOD_VALUES = {
    "CODECSHIFT_DATA_DIR": ("/srv/cs", Path("/srv/cs")),
    "CODECSHIFT_DATABASE_URL": ("postgresql://cs:pw@db:5432/codecshift", "postgresql://cs:pw@db:5432/codecshift"),
    "CODECSHIFT_BROKER_URL": ("redis://redis:6379/0", "redis://redis:6379/0"),
    "CODECSHIFT_SECRET_KEY": ("abc", "abc"),
    "CODECSHIFT_DASHBOARD_URL": ("https://cs.example.org/", "https://cs.example.org"),
    "CODECSHIFT_API_KEY": ("cs_key", "cs_key"),
    "CODECSHIFT_AUTH_ENABLED": ("false", False),
    "CODECSHIFT_LOCAL_LOGIN_ENABLED": ("no", False),
    "CODECSHIFT_OIDC_ENABLED": ("1", True),
    "CODECSHIFT_OIDC_ISSUER": ("https://id.example.org", "https://id.example.org"),
    "CODECSHIFT_OIDC_CLIENT_ID": ("cid", "cid"),
    "CODECSHIFT_OIDC_CLIENT_SECRET": ("csecret", "csecret"),
    "CODECSHIFT_OIDC_SCOPES": ("openid email", "openid email"),
    "CODECSHIFT_OIDC_ALGORITHMS": ("RS256, ES256", ["RS256", "ES256"]),
    "CODECSHIFT_OIDC_VERIFY_TLS": ("off", False),
    "CODECSHIFT_OIDC_CA_BUNDLE": ("/etc/ssl/ca.pem", "/etc/ssl/ca.pem"),
    "CODECSHIFT_OIDC_ALLOWED_DOMAINS": ("example.org,example.com", ["example.org", "example.com"]),
    "CODECSHIFT_OIDC_REQUIRED_CLAIM": ("groups=media", "groups=media"),
    "CODECSHIFT_OIDC_PROVIDER_NAME": ("Authentik", "Authentik"),
    "CODECSHIFT_OIDC_ADMIN_CLAIM": ("groups=admins", "groups=admins"),
    "CODECSHIFT_SESSION_LIFETIME_HOURS": ("0.5", 0.5),
    "CODECSHIFT_LOGIN_RATE_LIMIT": ("5 per minute", "5 per minute"),
    "CODECSHIFT_PROXY_COUNT": ("2", 2),
    "CODECSHIFT_WEB_HOST": ("0.0.0.0", "0.0.0.0"),
    "CODECSHIFT_WEB_PORT": ("9000", 9000),
    "CODECSHIFT_WEB_WORKERS": ("4", 4),
    "CODECSHIFT_NODE_NAME": ("gpu-box", "gpu-box"),
    "CODECSHIFT_ENCODERS": ("libx265,hevc_nvenc", ["libx265", "hevc_nvenc"]),
    "CODECSHIFT_PATH_MAPPINGS": ("/data=/mnt/media", ["/data=/mnt/media"]),
    "CODECSHIFT_LOG_LEVEL": ("debug", "DEBUG"),
    "CODECSHIFT_FLOWER_PORT": ("5566", 5566),
    "CODECSHIFT_FLOWER_BASIC_AUTH": ("a:b", "a:b"),
}


def test_every_variable_is_covered_here() -> None:
    assert set(GOOD_VALUES) == set(env_names())


@pytest.mark.parametrize("name", sorted(GOOD_VALUES))
def test_every_variable_is_read(name: str) -> None:
    raw, expected = GOOD_VALUES[name]
    settings = load_settings({name: raw})
    field = name.removeprefix("CODECSHIFT_").lower()
    assert getattr(settings, field) == expected


BAD_VALUES = [
    ("CODECSHIFT_AUTH_ENABLED", "maybe", "valid boolean"),
    ("CODECSHIFT_OIDC_VERIFY_TLS", "sure", "valid boolean"),
    ("CODECSHIFT_WEB_PORT", "eighty", "valid integer"),
    ("CODECSHIFT_WEB_PORT", "70000", "less than or equal to 65535"),
    ("CODECSHIFT_PROXY_COUNT", "-1", "greater than or equal to 0"),
    ("CODECSHIFT_DATABASE_URL", "not a url", "not a database URL"),
    ("CODECSHIFT_DATABASE_URL", "mysql://x@y/z", "unsupported database"),
    ("CODECSHIFT_BROKER_URL", "http://redis:6379", "unsupported broker scheme"),
    ("CODECSHIFT_DASHBOARD_URL", "cs.example.org", "http:// or https://"),
    ("CODECSHIFT_OIDC_REQUIRED_CLAIM", "groups", "NAME=VALUE"),
    ("CODECSHIFT_LOG_LEVEL", "loud", "DEBUG, INFO"),
    ("CODECSHIFT_OIDC_ALGORITHMS", "RS256,none", "never accepted"),
    ("CODECSHIFT_SESSION_LIFETIME_HOURS", "0", "greater than 0"),
    ("CODECSHIFT_LOGIN_RATE_LIMIT", "lots", "per minute"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD_VALUES)
def test_bad_value_names_the_variable(name: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value})
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    assert reason in message
    assert "\n" not in message


def test_unknown_codecshift_variables_are_ignored() -> None:
    assert isinstance(load_settings({"CODECSHIFT_TEST_POSTGRES": "x"}), InfraSettings)


def test_bad_value_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "codecshift.cli.main", "db", "init"],
                            env={"CODECSHIFT_AUTH_ENABLED": "maybe", "CODECSHIFT_DATA_DIR": str(tmp_path),
                                 "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "CODECSHIFT_AUTH_ENABLED" in lines[0]
    assert "Traceback" not in result.stderr
