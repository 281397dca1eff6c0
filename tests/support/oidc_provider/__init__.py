"""A real OpenID Connect provider on loopback for the sign-in tests.

The certified ``oidc-provider`` npm package, pinned with its whole dependency
tree by package-lock.json beside this file, installed once (``npm ci``) into a
cache folder by the first test that needs it (node 20+ and npm are required),
run as a node process with its own development sign-in and consent pages.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

VERSION = "9.13.3"
HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "provider.mjs"
CLIENT_SECRET = "codecshift-test-client-secret-0123456789abcdef"


LOCK = HERE / "package-lock.json"


def cache_folder() -> Path:
    base = os.environ.get("CODECSHIFT_TEST_CACHE") or os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    return Path(base).expanduser() / "codecshift-tests" / f"oidc-provider-{VERSION}-{digest}"


def install() -> Path:
    """The folder holding node_modules/oidc-provider at VERSION, installed on first use."""
    folder = cache_folder()
    if (folder / "node_modules" / "oidc-provider" / "package.json").is_file():
        return folder
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node 20+ and npm are required for the OIDC tests (the provider is the npm package "
                    f"oidc-provider@{VERSION})", pytrace=False)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="oidc-provider-", dir=folder.parent))
    shutil.copy2(HERE / "package.json", staging / "package.json")
    shutil.copy2(LOCK, staging / "package-lock.json")
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=staging,
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.fail(f"npm ci (oidc-provider@{VERSION}) failed:\n{result.stderr[-2000:]}", pytrace=False)
    try:
        staging.rename(folder)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@dataclass
class Provider:
    """A running provider: its issuer URL and the client registered for the dashboard."""

    issuer: str
    client_id: str
    client_secret: str
    process: subprocess.Popen[bytes]
    log_path: Path
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def client_config(dashboard_url: str, client_id: str = "codecshift", **extra: Any) -> dict[str, Any]:
    return {"client_id": client_id, "client_secret": CLIENT_SECRET,
            "redirect_uris": [f"{dashboard_url}/login/oidc/callback"],
            "post_logout_redirect_uris": [f"{dashboard_url}/login"],
            "grant_types": ["authorization_code"], "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic", **extra}


@contextmanager
def running_provider(port: int, clients: list[dict[str, Any]], accounts: dict[str, dict[str, Any]],
                     log_dir: Path) -> Iterator[Provider]:
    """The provider on ``port`` with ``clients`` (see client_config) and ``accounts`` (login -> claims)."""
    folder = install()
    shutil.copy2(SCRIPT, folder / "provider.mjs")
    config = {"port": port, "clients": clients, "accounts": accounts}
    log_path = log_dir / f"oidc-provider-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, "OP_CONFIG": json.dumps(config), "NODE_ENV": "development"}
    process = subprocess.Popen([shutil.which("node") or "node", str(folder / "provider.mjs")], cwd=folder,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}"
    provider = Provider(issuer=issuer, client_id=config["clients"][0]["client_id"], client_secret=CLIENT_SECRET,
                        process=process, log_path=log_path, accounts=accounts)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"oidc-provider exited with {process.returncode}:\n{provider.log()}")
            try:
                if requests.get(f"{issuer}/.well-known/openid-configuration", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"oidc-provider did not start:\n{provider.log()}")
            time.sleep(0.1)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"', re.IGNORECASE)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', re.IGNORECASE)


def _post_form(http: requests.Session, page: requests.Response, fields: dict[str, str]) -> requests.Response:
    match = _FORM.search(page.text)
    assert match, f"no form on {page.url}:\n{page.text[:1500]}"
    data = {name: unescape(value) for name, value in _HIDDEN.findall(page.text)}
    data.update(fields)
    return http.post(urljoin(page.url, unescape(match.group(1))), data=data, timeout=30)


def sign_in_without_browser(http: requests.Session, dashboard_url: str, login: str) -> requests.Response:
    """Walk the provider's own login and consent forms with plain HTTP; the final response
    is whatever the dashboard answers at the end of the callback."""
    page = http.get(f"{dashboard_url}/login/oidc", timeout=30)
    for _ in range(4):
        at_provider = not page.url.startswith(dashboard_url + "/")
        if at_provider and 'name="login"' in page.text:
            page = _post_form(http, page, {"login": login, "password": "any-password"})
        elif at_provider and 'name="prompt" value="consent"' in page.text:
            page = _post_form(http, page, {})
        else:
            break
    return page
