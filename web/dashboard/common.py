"""What every page shares: template context, live fragments with ETags, CSRF on forms,
query validation and paging."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf, validate_csrf
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest

from codecshift.version import read_version
from web.api.conditional import with_etag
from web.extensions import infra

M = TypeVar("M", bound=BaseModel)

NAV = (
    ("dashboard.overview", "Overview"),
    ("dashboard.jobs", "Jobs"),
    ("dashboard.failures", "Failures"),
    ("dashboard.history", "History"),
    ("dashboard.libraries", "Libraries"),
    ("dashboard.nodes", "Nodes"),
    ("dashboard.settings", "Settings"),
)


def is_admin() -> bool:
    """Whether the person may change things (everyone when authentication is off)."""
    if not infra().auth_enabled:
        return True
    return bool(current_user.is_authenticated and current_user.is_admin)


def signed_in() -> bool:
    return not infra().auth_enabled or bool(current_user.is_authenticated)


def has_endpoint(name: str) -> bool:
    return name in current_app.view_functions


def static_url(filename: str) -> str:
    """Static files carry the version, so a new release is fetched rather than served stale."""
    return url_for("static", filename=filename, v=read_version())


def _context() -> dict[str, Any]:
    auth = infra().auth_enabled
    return {
        "version": read_version(), "auth_enabled": auth, "is_admin": is_admin(), "signed_in": signed_in(),
        "username": current_user.username if auth and current_user.is_authenticated else None,
        "nav": NAV, "has_endpoint": has_endpoint, "static_url": static_url, "url_with": url_with,
    }


def register(app: Flask) -> None:
    app.context_processor(_context)
    # The same function CSRFProtect installs; templates work whichever is set up first.
    app.jinja_env.globals.setdefault("csrf_token", generate_csrf)


def check_form_csrf() -> None:
    """Every form a page posts carries the session's CSRF token."""
    try:
        validate_csrf(request.form.get("csrf_token"))
    except Exception as exc:  # flask-wtf raises wtforms' ValidationError with the reason
        raise BadRequest(f"The form expired or did not come from this dashboard ({exc}). "
                         "Reload the page and try again.") from None


def refuse_nul(values: Any, what: str) -> None:
    """A NUL character in a page's query or form is a 400 naming the field (PostgreSQL refuses
    NUL in text, and no path, name or search ever holds one)."""
    for key in values:
        if "\x00" in key or any("\x00" in value for value in values.getlist(key)):
            raise BadRequest(f"The {what} field {key.replace(chr(0), '')!r} contains a NUL character.")


def parse_args(model: type[M]) -> tuple[M, str | None]:
    """The page's query arguments as ``model``; a bad one is dropped and reported (a NUL
    character anywhere is a 400)."""
    refuse_nul(request.args, "query")
    args = {key: value for key, value in request.args.items()
            if key != "partial" and not key.startswith("_") and value != ""}
    try:
        return model.model_validate(args), None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ()))
        args.pop(field, None)
        try:
            return model.model_validate(args), f"{field}: {first.get('msg')}"
        except ValidationError:
            return model.model_validate({}), f"{field}: {first.get('msg')}"


def etagged(html: str, status: int = 200) -> Any:
    return with_etag(html.encode(), "text/html", status)


def live_page(template: str, partial: str, context: Callable[[], dict[str, Any]], status: int = 200) -> Any:
    """The whole page, or with ``?partial=1`` only its live part (304 when unchanged)."""
    values = context()
    if request.args.get("partial"):
        return etagged(render_template(partial, **values))
    return render_template(template, **values), status


def pages(page: int, per_page: int, total: int) -> dict[str, Any]:
    """Paging links: first, last and the pages around the current one."""
    last = max(1, math.ceil(total / per_page))
    around = sorted({1, last, *range(max(1, page - 2), min(last, page + 2) + 1)})
    return {"page": page, "per_page": per_page, "total": total, "last": last, "around": around,
            "first_item": (page - 1) * per_page + 1 if total else 0, "last_item": min(total, page * per_page)}


def url_with(**changes: Any) -> str:
    """The current page's URL with some query arguments changed (None removes one).

    Arguments starting with ``_`` are dropped: url_for reads ``_method``, ``_anchor``,
    ``_external`` and ``_scheme`` as its own options, so a crafted ``?_method=PUT`` would
    otherwise break every page."""
    args = {key: value for key, value in request.args.items() if key != "partial" and not key.startswith("_")}
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(request.endpoint or "dashboard.overview", **(request.view_args or {}), **args)
