"""Security headers on every response: a strict CSP with no inline code, frame
denial, nosniff, a referrer policy, and no caching of dynamic pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request

from codecshift.config import InfraSettings

FORM_ORIGINS_KEY = "codecshift.form_origins"


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def allow_form_target(app: Flask, url: str) -> None:
    """Let forms of our pages end at ``url``'s origin (Chromium applies form-action to
    the redirect after a POST: sign-out redirects to the OIDC provider's logout page)."""
    origin = origin_of(url)
    origins: set[str] = app.extensions.setdefault(FORM_ORIGINS_KEY, set())
    if origin:
        origins.add(origin)


def content_security_policy(form_origins: set[str]) -> str:
    forms = " ".join(["'self'", *sorted(form_origins)])
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            f"form-action {forms}; frame-ancestors 'none'")


def _add_headers(response: Response) -> Response:
    headers = response.headers
    origins = current_app.extensions.get(FORM_ORIGINS_KEY, set())
    headers["Content-Security-Policy"] = content_security_policy(origins)
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=15552000")
    if "Cache-Control" not in headers and not (request.endpoint or "").endswith("static"):
        headers["Cache-Control"] = "no-store"
    return response


def init_headers(app: Flask, settings: InfraSettings) -> None:
    if settings.oidc_enabled and settings.oidc_issuer:
        allow_form_target(app, settings.oidc_issuer)
    app.after_request(_add_headers)
