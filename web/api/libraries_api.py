"""Libraries: folders (and Plex sections), their profiles, scans, health checks and files."""

from __future__ import annotations

import os
from typing import Any

from flask import jsonify
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from codecshift import pathmap, registry
from codecshift.models import Library, MediaFile, ScanRun
from codecshift.services import healthchecks, library_removal, scanner
from tasks import names
from web.api import api_blueprint as bp
from web.api.errors import ApiError, not_found
from web.api.paths import clean_roots, inside_library, prefix_pattern
from web.api.publishing import enqueue, request_dispatch
from web.api.routing import api_route
from web.api.schemas import FilesQuery, LibraryBody, LibraryPatch, Page
from web.extensions import db


def library_json(library: Library, session: Any = None) -> dict[str, Any]:
    data = {
        "id": library.id, "name": library.name, "kind": library.kind, "roots": library.roots,
        "plex_section_key": library.plex_section_key, "profile": library.profile,
        "path_mappings": library.path_mappings, "rescan_interval_minutes": library.rescan_interval_minutes,
        "enabled": library.enabled, "created_at": library.created_at.isoformat(),
        "last_scan_at": library.last_scan_at.isoformat() if library.last_scan_at else None,
    }
    if session is not None:
        states = dict(session.execute(select(MediaFile.state, func.count()).where(
            MediaFile.library_id == library.id).group_by(MediaFile.state)).all())
        data["files"] = states
        live = session.scalar(select(ScanRun).where(ScanRun.library_id == library.id)
                              .order_by(ScanRun.id.desc()).limit(1))
        data["last_scan"] = scan_json(live) if live else None
    return data


def scan_json(run: ScanRun) -> dict[str, Any]:
    return {
        "id": run.id, "library_id": run.library_id, "status": run.status, "cancel_requested": run.cancel_requested,
        "files_seen": run.files_seen, "files_new": run.files_new, "files_changed": run.files_changed,
        "files_gone": run.files_gone, "files_probed": run.files_probed, "jobs_created": run.jobs_created,
        "total": run.total, "message": run.message, "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _library(library_id: int) -> Library:
    library = db().get(Library, library_id)
    if library is None:
        raise not_found("library", library_id)
    return library


def _validated_profile(profile: dict[str, Any]) -> dict[str, Any]:
    try:
        return registry.validate_profile(profile)
    except registry.SettingError as exc:
        raise ApiError(400, "validation_error", str(exc), field=f"profile.{exc.key}") from None


def _mappings(items: list[Any]) -> list[dict[str, Any]]:
    """The mappings checked the one way every entry point checks them (pathmap.validate_mappings)."""
    raw = [{"from": m.from_, "to": m.to, "node": m.node} for m in items]
    try:
        return pathmap.mappings_to_json(pathmap.validate_mappings(raw))
    except pathmap.PathMappingError as exc:
        field = "path_mappings"
        if exc.index is not None:
            field += f".{exc.index - 1}" + (f".{exc.key}" if exc.key else "")
        raise ApiError(400, "validation_error", f"{field}: {exc}", field=field) from None


def _checked_roots(roots: list[str], mappings: list[dict[str, Any]]) -> list[str]:
    """Roots normalised ('..' and '/' refused), each a folder the control worker can read."""
    clean, problem = clean_roots(roots)
    if problem is not None:
        index, reason = problem
        raise ApiError(400, "validation_error", f"roots.{index}: {reason}", field=f"roots.{index}")
    for index, root in enumerate(clean):
        local = pathmap.to_local(root, mappings).path
        if not os.path.isdir(local):
            raise ApiError(400, "validation_error", f"roots.{index}: {local} is not a folder the control "
                           "worker can read", field=f"roots.{index}")
    return clean


@api_route(bp, "/libraries", ("GET",), summary="List libraries", role="read", tag="libraries")
def list_libraries() -> Any:
    session = db()
    rows = session.scalars(select(Library).order_by(Library.name))
    return jsonify({"items": [library_json(library, session) for library in rows]})


@api_route(bp, "/libraries", ("POST",), summary="Add a folder library", role="admin", tag="libraries",
           body=LibraryBody, status=201)
def create_library(body: LibraryBody) -> Any:
    session = db()
    mappings = _mappings(body.path_mappings)
    roots = _checked_roots(body.roots, mappings)
    library = Library(name=body.name.strip(), kind="folder", roots=roots,
                      profile=_validated_profile(body.profile), path_mappings=mappings,
                      rescan_interval_minutes=body.rescan_interval_minutes, enabled=body.enabled)
    session.add(library)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "conflict", f"a library named {body.name!r} already exists", field="name") from None
    return jsonify(library_json(library, session)), 201


@api_route(bp, "/libraries/<int:library_id>", ("GET",), summary="One library", role="read", tag="libraries")
def get_library(library_id: int) -> Any:
    return jsonify(library_json(_library(library_id), db()))


@api_route(bp, "/libraries/<int:library_id>", ("PATCH",), summary="Change a library", role="admin",
           tag="libraries", body=LibraryPatch)
def update_library(library_id: int, body: LibraryPatch) -> Any:
    session = db()
    library = _library(library_id)
    fields = body.model_fields_set
    mappings = _mappings(body.path_mappings) if body.path_mappings is not None else library.path_mappings
    if body.roots is not None:
        if library.kind == "plex":
            raise ApiError(400, "validation_error", "roots: a Plex library's folders are its section's "
                           "locations; each scan takes them from Plex", field="roots")
        library.roots = _checked_roots(body.roots, mappings)
    if body.name is not None:
        library.name = body.name.strip()
    if body.profile is not None:
        library.profile = _validated_profile(body.profile)
    if body.path_mappings is not None:
        library.path_mappings = mappings
    if "rescan_interval_minutes" in fields:
        library.rescan_interval_minutes = body.rescan_interval_minutes
    if body.enabled is not None:
        library.enabled = body.enabled
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "conflict", f"a library named {body.name!r} already exists", field="name") from None
    return jsonify(library_json(library, session))


@api_route(bp, "/libraries/<int:library_id>", ("DELETE",), summary="Remove a library (files stay)",
           role="admin", tag="libraries", responses={409: "A job of the library is running, verifying or "
                                                          "replacing; nothing was changed"})
def delete_library(library_id: int) -> Any:
    """The files on disk stay. The library's file and scan records go; its queued and
    awaiting-approval jobs end cancelled (with the reason); finished jobs and history stay."""
    try:
        removal = library_removal.remove_library(db(), library_id)
    except library_removal.LibraryBusy as exc:
        raise ApiError(409, "library_busy", str(exc)) from None
    if removal is None:
        raise not_found("library", library_id)
    return jsonify({"deleted": library_id, "cancelled_jobs": removal.cancelled_jobs})


@api_route(bp, "/libraries/<int:library_id>/scan", ("POST",), summary="Scan a library now", role="admin",
           tag="libraries", status=202)
def scan_library(library_id: int) -> Any:
    """Starts a scan on the control worker, or answers the one already running."""
    session = db()
    _library(library_id)
    run, created = scanner.start_scan(session, library_id)
    if created:
        enqueue(names.SCAN_LIBRARY, [run.id])
    return jsonify({**scan_json(run), "created": created}), 202


@api_route(bp, "/libraries/<int:library_id>/scans", ("GET",), summary="A library's scans", role="read",
           tag="libraries", query=Page)
def list_scans(library_id: int, query: Page) -> Any:
    session = db()
    _library(library_id)
    stmt = select(ScanRun).where(ScanRun.library_id == library_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(ScanRun.id.desc()).offset((query.page - 1) * query.per_page)
                           .limit(query.per_page))
    return jsonify({"items": [scan_json(r) for r in rows], "page": query.page, "per_page": query.per_page,
                    "total": total})


@api_route(bp, "/scans/<int:scan_id>", ("GET",), summary="One scan's progress", role="read", tag="libraries")
def get_scan(scan_id: int) -> Any:
    run = db().get(ScanRun, scan_id)
    if run is None:
        raise not_found("scan", scan_id)
    return jsonify(scan_json(run))


@api_route(bp, "/scans/<int:scan_id>/cancel", ("POST",), summary="Cancel a scan", role="admin",
           tag="libraries", status=202)
def cancel_scan(scan_id: int) -> Any:
    session = db()
    if session.get(ScanRun, scan_id) is None:
        raise not_found("scan", scan_id)
    if not scanner.cancel_scan(session, scan_id):
        raise ApiError(409, "conflict", f"scan {scan_id} is not running")
    return jsonify({"cancel_requested": True}), 202


@api_route(bp, "/libraries/<int:library_id>/healthcheck", ("POST",), summary="Check every file for corruption",
           role="admin", tag="libraries", status=202)
def healthcheck_library(library_id: int) -> Any:
    """Queues a full decode of each present file on any node (one set-based statement; files with a
    live check are skipped); results show in the files list."""
    _library(library_id)
    created = healthchecks.queue_library(db(), library_id)
    request_dispatch()
    return jsonify({"jobs_created": created}), 202


@api_route(bp, "/libraries/<int:library_id>/files", ("GET",), summary="A library's files", role="read",
           tag="libraries", query=FilesQuery)
def list_files(library_id: int, query: FilesQuery) -> Any:
    """Filter by state or health (ok, corrupt, unchecked); search the path; paged."""
    session = db()
    stmt = files_statement(session, _library(library_id), query)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(MediaFile.path).offset((query.page - 1) * query.per_page)
                           .limit(query.per_page))
    return jsonify({"items": [file_json(f) for f in rows], "page": query.page, "per_page": query.per_page,
                    "total": total})


def files_statement(session: Any, library: Library, query: FilesQuery) -> Any:
    """The library's files narrowed by the query; a path outside the library is a 400."""
    stmt = select(MediaFile).where(MediaFile.library_id == library.id)
    if query.state:
        stmt = stmt.where(MediaFile.state == query.state)
    if query.health == "unchecked":
        stmt = stmt.where(MediaFile.health.is_(None))
    elif query.health:
        stmt = stmt.where(MediaFile.health == query.health)
    if query.q:
        stmt = stmt.where(MediaFile.path.contains(query.q, autoescape=True))
    if query.path:
        folder = inside_library(session, query.path, [library])
        stmt = stmt.where(or_(MediaFile.path == folder,
                              MediaFile.path.startswith(prefix_pattern(folder), autoescape=True)))
    return stmt


def file_json(media: MediaFile) -> dict[str, Any]:
    return {
        "id": media.id, "path": media.path, "size": media.size, "state": media.state,
        "container": media.container, "video_codec": media.video_codec, "width": media.width,
        "height": media.height, "bit_depth": media.bit_depth, "hdr": media.hdr, "duration": media.duration,
        "bitrate": media.bitrate, "audio_streams": media.audio_streams,
        "subtitle_streams": media.subtitle_streams, "decision": media.decision,
        "probe_error": media.probe_error, "health": media.health, "health_message": media.health_message,
        "health_checked_at": media.health_checked_at.isoformat() if media.health_checked_at else None,
    }

