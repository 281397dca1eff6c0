"""The Plex page: link a server (URL and token), test, unlink, see its name and version, and
pick the movie and TV sections CodecShift manages (each becomes a library).

Forms post here with their CSRF token; the work is the same as the API's
(codecshift.services.plex_link). The token field is always empty: a stored
token is never sent back to the browser.
"""

from __future__ import annotations

import os
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from codecshift import pathmap, registry, settings_store
from codecshift.plex import PlexError, PlexIdentity
from codecshift.services import plex_link, scanner
from tasks import names
from web.api.plex_api import link_field
from web.api.publishing import enqueue
from web.dashboard import dashboard_blueprint as bp
from web.dashboard.common import check_form_csrf
from web.extensions import db
from web.security import admin_required_page, login_required_page


def _reachable(library_roots: list[str], mappings: list[Any]) -> list[dict[str, Any]]:
    """Each Plex location, where the control worker finds it, and whether it does."""
    result = []
    for root in library_roots:
        local = pathmap.to_local(root, mappings).path
        result.append({"plex": root, "local": local, "ok": os.path.isdir(local)})
    return result


def _context(form: dict[str, Any] | None = None, errors: dict[str, str] | None = None) -> dict[str, Any]:
    session = db()
    values = settings_store.load_all(session)
    state = plex_link.link_state(values)
    identity: PlexIdentity | None = None
    problem: PlexError | None = None
    views: list[plex_link.SectionView] = []
    if state.linked:
        try:
            identity = plex_link.check(session)
            views = plex_link.sections(session)
        except PlexError as exc:
            problem = exc
    managed = plex_link.managed_sections(session)
    listed = {view.section.key for view in views}
    libraries = [{"library": library, "roots": _reachable(library.roots or [], library.path_mappings or [])}
                 for key, library in sorted(managed.items()) if key not in listed]
    rows = []
    for view in views:
        library = managed.get(view.section.key)
        roots = _reachable(list(view.section.locations), library.path_mappings or [] if library else [])
        rows.append({"view": view, "library": library, "roots": roots})
    form = form or {"url": state.url, "verify_tls": state.verify_tls, "timeout": state.timeout}
    return {"state": state, "identity": identity, "problem": problem, "rows": rows, "orphans": libraries,
            "form": form, "errors": errors or {}, "timeout_setting": registry.REGISTRY["plex_timeout"]}


@bp.route("/plex")
@login_required_page
def plex() -> Any:
    return render_template("dashboard/plex.html", **_context())


@bp.route("/plex/link", methods=["POST"])
@admin_required_page
def plex_link_page() -> Any:
    check_form_csrf()
    form = {"url": request.form.get("url", "").strip(), "verify_tls": "true" in request.form.getlist("verify_tls"),
            "timeout": request.form.get("timeout", "").strip()}
    session = db()
    errors: dict[str, str] = {}
    timeout = None
    if form["timeout"]:
        try:
            timeout = registry.parse_value("plex_timeout", form["timeout"])
        except registry.SettingError as exc:
            errors["timeout"] = exc.reason
    if not form["url"]:
        errors["url"] = "the server's URL is required, e.g. http://192.168.1.10:32400"
    if not errors:
        try:
            result = plex_link.link_server(session, form["url"], request.form.get("token", ""),
                                           verify_tls=form["verify_tls"], timeout=timeout)
        except PlexError as exc:
            session.rollback()
            errors[link_field(exc)] = exc.message
        else:
            identity = result.identity
            flash(f"Linked to {identity.name} (Plex {identity.version}).", "ok")
            if result.previous_identifier:
                flash("This is a different server than the one linked before: check that the Plex "
                      "libraries' sections still exist on it.", "warn")
            return redirect(url_for("dashboard.plex"))
    return render_template("dashboard/plex.html", **_context(form, errors)), 400


@bp.route("/plex/test", methods=["POST"])
@admin_required_page
def plex_test_page() -> Any:
    check_form_csrf()
    try:
        identity = plex_link.check(db())
    except PlexError as exc:
        flash(f"Plex did not answer as the linked server: {exc.message}", "error")
    else:
        flash(f"{identity.name} answers (Plex {identity.version}).", "ok")
    return redirect(url_for("dashboard.plex"))


@bp.route("/plex/unlink", methods=["POST"])
@admin_required_page
def plex_unlink_page() -> Any:
    check_form_csrf()
    plex_link.unlink(db())
    flash("Plex unlinked: URL, token and server identity forgotten. Plex libraries stay.", "ok")
    return redirect(url_for("dashboard.plex"))


@bp.route("/plex/sections", methods=["POST"])
@admin_required_page
def plex_sections_page() -> Any:
    """Each ticked section becomes a library; with "scan" each is scanned through Plex at once."""
    check_form_csrf()
    session = db()
    keys = [key for key in request.form.getlist("section") if key]
    if not keys:
        flash("Tick the sections CodecShift should manage.", "error")
        return redirect(url_for("dashboard.plex"))
    added, scanning = [], False
    for key in keys:
        try:
            library = plex_link.manage_section(session, key)
        except PlexError as exc:
            session.rollback()
            flash(f"Plex did not answer: {exc.message}", "error")
            break
        except plex_link.SectionChoiceError as exc:
            session.rollback()
            flash(exc.message, "error")
            continue
        added.append(library.name)
        if "true" in request.form.getlist("scan_now"):
            run, created = scanner.start_scan(session, library.id)
            if created:
                enqueue(names.SCAN_LIBRARY, [run.id])
            scanning = True
    if added:
        flash(f"Added {', '.join(added)}{'; scanning through Plex now' if scanning else ''}. If the control "
              f"worker or the nodes see Plex's folders under other paths, add path mappings on each "
              f"library's page.", "ok")
    return redirect(url_for("dashboard.libraries" if scanning else "dashboard.plex"))
