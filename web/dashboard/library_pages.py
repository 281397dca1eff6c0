"""Libraries: the list with live scan progress, adding and editing a folder library with
its profile, rescan interval and path mappings, and a library's files. Plex libraries
(added on the Plex page) are edited here too; their folders are their section's."""

from __future__ import annotations

import os
from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask import request as flask_request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from codecshift import pathmap, registry, settings_store
from codecshift.models import SCAN_LIVE_STATUSES, Library, MediaFile, ScanRun
from codecshift.services import library_removal, scanner
from tasks import names
from web.api.errors import ApiError
from web.api.libraries_api import file_json, files_statement, scan_json
from web.api.paging import count_rows
from web.api.publishing import enqueue
from web.api.schemas import FilesQuery
from web.dashboard import dashboard_blueprint as bp
from web.dashboard.common import check_form_csrf, is_admin, live_page, pages, parse_args
from web.dashboard.library_form import PROFILE_PREFIX, LibraryForm
from web.extensions import db
from web.security import admin_required_page, login_required_page

FILE_STATES = ("new", "probed", "queued", "done", "skipped", "failed", "error", "missing", "gone",
               "awaiting_approval")


def _library_or_404(library_id: int) -> Library:
    library = db().get(Library, library_id)
    if library is None:
        abort(404, f"Library {library_id} does not exist.")
    return library


def _summaries(libraries: list[Library]) -> dict[int, dict[str, Any]]:
    """File counts by state and the latest scan of each library, in two queries."""
    session = db()
    ids = [library.id for library in libraries]
    result: dict[int, dict[str, Any]] = {i: {"files": {}, "scan": None, "total": 0} for i in ids}
    if not ids:
        return result
    for library_id, state, count in session.execute(
            select(MediaFile.library_id, MediaFile.state, func.count()).where(MediaFile.library_id.in_(ids))
            .group_by(MediaFile.library_id, MediaFile.state)):
        result[library_id]["files"][state] = count
        result[library_id]["total"] += count if state != "gone" else 0
    latest = select(func.max(ScanRun.id)).where(ScanRun.library_id.in_(ids)).group_by(ScanRun.library_id)
    for run in session.scalars(select(ScanRun).where(ScanRun.id.in_(latest))):
        result[run.library_id]["scan"] = scan_json(run)
    return result


def _scanning(summaries: dict[int, dict[str, Any]]) -> bool:
    return any(s["scan"] and s["scan"]["status"] in SCAN_LIVE_STATUSES for s in summaries.values())


@bp.route("/libraries")
@login_required_page
def libraries() -> Any:
    libraries = list(db().scalars(select(Library).order_by(Library.name)))

    def context() -> dict[str, Any]:
        summaries = _summaries(libraries)
        return {"libraries": libraries, "summaries": summaries,
                "refresh_ms": 1000 if _scanning(summaries) else 5000}

    return live_page("dashboard/libraries.html", "dashboard/_libraries_live.html", context)


def _form_context(form: LibraryForm, library: Library | None) -> dict[str, Any]:
    groups = {group: [s for s in items if s.per_library and s.key != "rescan_interval_minutes"]
              for group, items in registry.groups().items()}
    groups = {group: items for group, items in groups.items() if items}
    error_groups = {group for group, items in groups.items()
                    if any(PROFILE_PREFIX + s.key in form.errors for s in items)}
    return {"form": form, "library": library, "groups": groups, "error_groups": error_groups,
            "global_values": settings_store.load_all(db()), "profile_prefix": PROFILE_PREFIX,
            "plex_roots": _plex_roots(library)}


def _plex_roots(library: Library | None) -> list[dict[str, Any]]:
    """A Plex library's folders (Plex's paths), where the control worker finds each, and whether it does."""
    if library is None or library.kind != "plex":
        return []
    result = []
    for root in library.roots or []:
        local = pathmap.to_local(root, library.path_mappings or []).path
        result.append({"plex": root, "local": local, "ok": os.path.isdir(local)})
    return result


def _form_page(form: LibraryForm, library: Library | None, status: int = 200) -> Any:
    if library is None:
        return render_template("dashboard/library_new.html", **_form_context(form, None)), status
    context = {**_live_context(library), **_form_context(form, library)}
    return render_template("dashboard/library.html", **context), status


def _save(form: LibraryForm, library: Library | None) -> Any:
    """Validate and store; re-render with the errors beside their fields when any."""
    session = db()
    plex_library = library is not None and library.kind == "plex"
    values = form.validate(fixed_roots=list(library.roots or []) if plex_library else None)
    if values is None:
        return _form_page(form, library, 400)
    created = library is None
    if library is None:
        library = Library(kind="folder")
        session.add(library)
    for key, value in values.items():
        setattr(library, key, value)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        form.errors["name"] = f"a library named {form.name!r} already exists"
        return _form_page(form, None if created else session.get(Library, library.id), 400)
    if form.scan_after_save:
        run, started = scanner.start_scan(session, library.id)
        if started:
            enqueue(names.SCAN_LIBRARY, [run.id])
        flash(f"Library {library.name} saved; scanning it now.", "ok")
    else:
        flash(f"Library {library.name} saved.", "ok")
    return redirect(url_for("dashboard.libraries_edit", library_id=library.id))


@bp.route("/libraries/new", methods=["GET", "POST"])
@admin_required_page
def libraries_new() -> Any:
    if flask_request.method == "POST":
        check_form_csrf()
        return _save(LibraryForm.from_form(flask_request.form), None)
    return _form_page(LibraryForm(), None)


@bp.route("/libraries/<int:library_id>", methods=["GET", "POST"])
@login_required_page
def libraries_edit(library_id: int) -> Any:
    library = _library_or_404(library_id)
    if flask_request.method == "POST":
        if not is_admin():
            abort(403)
        check_form_csrf()
        return _save(LibraryForm.from_form(flask_request.form), library)
    if flask_request.args.get("partial"):
        return live_page("", "dashboard/_library_live.html", lambda: _live_context(library))
    return _form_page(LibraryForm.from_library(library), library)


def _live_context(library: Library) -> dict[str, Any]:
    summary = _summaries([library])[library.id]
    scans = db().scalars(select(ScanRun).where(ScanRun.library_id == library.id).order_by(ScanRun.id.desc())
                         .limit(5))
    return {"library": library, "summary": summary, "scans": [scan_json(s) for s in scans],
            "refresh_ms": 1000 if _scanning({library.id: summary}) else 5000}


@bp.route("/libraries/<int:library_id>/delete", methods=["POST"])
@admin_required_page
def libraries_delete(library_id: int) -> Any:
    check_form_csrf()
    _library_or_404(library_id)
    try:
        removal = library_removal.remove_library(db(), library_id)
    except library_removal.LibraryBusy as exc:
        flash(f"Not removed: {exc}.", "error")
        return redirect(url_for("dashboard.libraries_edit", library_id=library_id), code=303)
    if removal is None:
        abort(404, f"Library {library_id} does not exist.")
    cancelled = removal.cancelled_jobs
    jobs = f" {cancelled} waiting job{'s were' if cancelled != 1 else ' was'} cancelled." if cancelled else ""
    flash(f"Library {removal.name} removed. Its files on disk were not touched.{jobs}", "ok")
    return redirect(url_for("dashboard.libraries"))


@bp.route("/libraries/<int:library_id>/files")
@login_required_page
def libraries_files(library_id: int) -> Any:
    session = db()
    library = _library_or_404(library_id)
    query, error = parse_args(FilesQuery)
    status = 200
    try:
        stmt = files_statement(session, library, query)
    except ApiError as exc:
        error, status = exc.message, 400
        stmt = files_statement(session, library, query.model_copy(update={"path": None}))
    total = count_rows(session, stmt)
    rows = session.scalars(stmt.order_by(MediaFile.path).offset((query.page - 1) * query.per_page)
                           .limit(query.per_page))
    return render_template("dashboard/library_files.html", library=library, query=query, error=error,
                           rows=[file_json(f) for f in rows], p=pages(query.page, query.per_page, total),
                           states=FILE_STATES), status
