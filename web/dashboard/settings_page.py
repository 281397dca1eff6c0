"""Settings: every behaviour setting of the registry, grouped, with its help text.

Every field is checked; a bad value is refused with the reason beside it and
nothing is saved until every field passes (the API refuses the same way)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from codecshift import registry, settings_store
from web.api.publishing import request_dispatch
from web.dashboard import dashboard_blueprint as bp
from web.dashboard.common import check_form_csrf, is_admin
from web.extensions import db
from web.security import login_required_page


def as_text(value: Any) -> str:
    """A value as its form field shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def _page(values: dict[str, Any], errors: dict[str, str], originals: dict[str, str], status: int = 200) -> Any:
    return render_template("dashboard/settings.html", groups=registry.groups(), values=values, errors=errors,
                           originals=originals), status


def _originals(current: dict[str, Any]) -> dict[str, str]:
    return {s.key: as_text(current[s.key]) for s in registry.iter_settings() if not s.secret and not s.managed}


def read_form(form: Any, current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(typed changes, values to show again, errors per key) from the submitted form.

    Only fields the person edited count (each carries the value it was shown with), so
    saving never reverts what someone else changed meanwhile, such as pausing the queue."""
    changes: dict[str, Any] = {}
    shown = registry.public_values(current)
    errors: dict[str, str] = {}
    for setting in registry.iter_settings():
        key = setting.key
        if setting.managed:
            # Shown read-only (the Plex page sets these after checking the server); a form that
            # carries one anyway is refused rather than silently ignored.
            if key in form or f"clear__{key}" in form:
                errors[key] = "set by linking a Plex server on the Plex page; it cannot be changed here"
            continue
        if setting.secret:
            raw = form.get(key, "")
            if form.get(f"clear__{key}"):
                changes[key] = [] if setting.type == "list" else ""
            elif raw.strip():
                try:
                    changes[key] = setting.parse(raw)
                except registry.SettingError as exc:
                    errors[key] = exc.reason
            continue
        if setting.type == "bool":
            raw = "true" if "true" in form.getlist(key) else "false"
        elif key in form:
            raw = form.get(key, "")
        else:
            continue  # not on the form (an older page): leave it as it is
        original = form.get(f"orig__{key}")
        if original is not None and raw.strip() == original.strip():
            continue  # not edited: keep the stored value, whatever it is now
        shown[key] = raw
        try:
            value = setting.parse(raw)
        except registry.SettingError as exc:
            errors[key] = exc.reason
            continue
        if value != current[key]:
            changes[key] = value
    return changes, shown, errors


@bp.route("/settings", methods=["GET", "POST"])
@login_required_page
def settings() -> Any:
    session = db()
    current = settings_store.load_all(session)
    if request.method == "GET":
        return _page(registry.public_values(current), {}, _originals(current))
    if not is_admin():
        abort(403)
    check_form_csrf()
    changes, shown, errors = read_form(request.form, current)
    if errors:
        originals = {key: request.form[f"orig__{key}"] for key in _originals(current) if f"orig__{key}" in request.form}
        return _page(shown, errors, originals, 400)
    if changes:
        settings_store.set_many(session, changes)
        session.commit()
        if "queue_paused" in changes:
            request_dispatch()
        changed = ", ".join(sorted(changes))
        flash(f"Saved: {changed}.", "ok")
    else:
        flash("Nothing changed.", "info")
    return redirect(url_for("dashboard.settings"))
