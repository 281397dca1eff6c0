"""Plex: link a server (checked against its identity before anything is saved), test, unlink,
list its sections and make them libraries. The token is write-only: no answer contains it."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from pydantic import Field, StrictBool

from codecshift import registry, settings_store
from codecshift.plex import PlexError, PlexIdentity
from codecshift.services import plex_link, scanner
from tasks import names
from web.api import api_blueprint as bp
from web.api.errors import ApiError
from web.api.libraries_api import library_json, scan_json
from web.api.publishing import enqueue
from web.api.routing import api_route
from web.api.schemas import Strict
from web.extensions import db


class PlexLinkBody(Strict):
    url: str = Field(min_length=1, max_length=2000, description="Base URL, e.g. http://192.168.1.10:32400")
    token: str = Field("", max_length=500, description="Plex token; blank keeps the stored one")
    verify_tls: StrictBool = True
    timeout: int | None = Field(None, ge=1, le=120, description="Seconds to wait for each answer")


class PlexLibraryBody(Strict):
    section_key: str = Field(min_length=1, max_length=64)
    name: str | None = Field(None, max_length=200, description="Default: the section's title")
    profile: dict[str, Any] = Field(default_factory=dict)
    path_mappings: list[dict[str, Any]] = Field(default_factory=list,
                                                description="[{from, to, node}]: Plex's paths to what "
                                                            "the control worker and nodes see")
    rescan_interval_minutes: int | None = Field(None, ge=0, le=525_600)
    enabled: StrictBool = True
    scan: StrictBool = False


def identity_json(identity: PlexIdentity) -> dict[str, str]:
    return {"name": identity.name, "machine_identifier": identity.machine_identifier,
            "version": identity.version}


def link_field(exc: PlexError) -> str:
    """Which field of the link form a failure points at."""
    if exc.kind == "unauthorized" or exc.message.startswith(("a Plex token", "the Plex token")):
        return "token"
    return "url"


def plex_error(exc: PlexError, status: int = 502) -> ApiError:
    """Plex's failures never answer 401/403: those would say *our* credentials were wrong."""
    if isinstance(exc, plex_link.PlexNotLinked):
        return ApiError(409, "plex_not_linked", exc.message)
    return ApiError(status, f"plex_{exc.kind}", exc.message, extra={"kind": exc.kind})


@api_route(bp, "/plex", ("GET",), summary="The Plex link (never the token)", role="read", tag="plex")
def plex_status() -> Any:
    """URL, machine identifier, TLS choice, timeout, and whether a token is stored."""
    return jsonify(plex_link.link_state(settings_store.load_all(db())).as_json())


@api_route(bp, "/plex/link", ("POST",), summary="Link a Plex server", role="admin", tag="plex",
           body=PlexLinkBody, responses={400: "URL or token refused, or the server did not answer as Plex"})
def plex_link_server(body: PlexLinkBody) -> Any:
    """Connects with the URL and token and reads the server's identity and sections first;
    nothing is saved unless that works."""
    session = db()
    try:
        result = plex_link.link_server(session, body.url, body.token, verify_tls=body.verify_tls,
                                       timeout=body.timeout)
    except PlexError as exc:
        session.rollback()
        raise ApiError(400, f"plex_{exc.kind}", exc.message, field=link_field(exc),
                       extra={"kind": exc.kind}) from None
    except registry.SettingError as exc:
        session.rollback()
        raise ApiError(400, "validation_error", str(exc), field="timeout") from None
    state = plex_link.link_state(settings_store.load_all(session))
    return jsonify({**state.as_json(), "server": identity_json(result.identity),
                    "replaced_server": result.previous_identifier})


@api_route(bp, "/plex/link", ("DELETE",), summary="Unlink the Plex server", role="admin", tag="plex")
def plex_unlink() -> Any:
    """Forgets URL, token and machine identifier. Plex libraries, their files and history stay."""
    session = db()
    plex_link.unlink(session)
    return jsonify(plex_link.link_state(settings_store.load_all(session)).as_json())


@api_route(bp, "/plex/test", ("POST",), summary="Test the Plex connection", role="admin", tag="plex",
           responses={409: "No server linked", 502: "Plex did not answer as the linked server"})
def plex_test() -> Any:
    try:
        identity = plex_link.check(db())
    except PlexError as exc:
        raise plex_error(exc) from None
    return jsonify({"ok": True, "server": identity_json(identity)})


@api_route(bp, "/plex/sections", ("GET",), summary="The Plex server's movie and TV sections", role="read",
           tag="plex", responses={409: "No server linked", 502: "Plex did not answer"})
def plex_sections() -> Any:
    """Each with its locations (Plex's paths) and the library managing it, if any."""
    try:
        views = plex_link.sections(db())
    except PlexError as exc:
        raise plex_error(exc) from None
    return jsonify({"items": [view.as_json() for view in views]})


@api_route(bp, "/plex/libraries", ("POST",), summary="Manage a Plex section as a library", role="admin",
           tag="plex", body=PlexLibraryBody, status=201,
           responses={404: "No such section", 409: "Already managed, a name taken, or no server linked",
                      502: "Plex did not answer"})
def plex_create_library(body: PlexLibraryBody) -> Any:
    """The library's roots are the section's locations; map them with path_mappings to where the
    control worker and the nodes find the files. ``scan`` starts a scan through Plex at once."""
    session = db()
    try:
        library = plex_link.manage_section(
            session, body.section_key, name=body.name, profile=body.profile, path_mappings=body.path_mappings,
            rescan_interval_minutes=body.rescan_interval_minutes, enabled=body.enabled)
    except PlexError as exc:
        session.rollback()
        raise plex_error(exc) from None
    except plex_link.SectionChoiceError as exc:
        session.rollback()
        status = {"not_found": 404, "conflict": 409}.get(exc.code, 400)
        raise ApiError(status, exc.code, exc.message, field=exc.field) from None
    data = library_json(library, session)
    if body.scan:
        run, created = scanner.start_scan(session, library.id)
        if created:
            enqueue(names.SCAN_LIBRARY, [run.id])
        data["scan"] = scan_json(run)
    return jsonify(data), 201
