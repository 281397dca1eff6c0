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


def _page(values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Any:
    return render_template("dashboard/settings.html", groups=registry.groups(), values=values, errors=errors), status


def read_form(form: Any, current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(typed changes, values to show again, errors per key) from the submitted form."""
    changes: dict[str, Any] = {}
    shown = registry.public_values(current)
    errors: dict[str, str] = {}
    for setting in registry.iter_settings():
        key = setting.key
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
        return _page(registry.public_values(current), {})
    if not is_admin():
        abort(403)
    check_form_csrf()
    changes, shown, errors = read_form(request.form, current)
    if errors:
        return _page(shown, errors, 400)
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
