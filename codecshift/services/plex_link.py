"""The link to one Plex server, kept in the settings: link, test, unlink, sections, refresh.

The token is a write-only setting (``plex_token``): nothing here returns it.
The machine identifier recorded when linking is passed to every later
connection, so a different server answering at the same URL is refused
(docs/plex.md). Each managed section becomes a library of kind ``plex`` whose
roots are the section's locations as Plex sees them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from codecshift import pathmap, plex, registry, settings_store
from codecshift.models import Job, Library, MediaFile
from codecshift.plex import PlexConfigError, PlexConnection, PlexIdentity, PlexSection, RefreshResult
from codecshift.services import jobs as job_service

LINK_KEYS = ("plex_url", "plex_token", "plex_machine_identifier")


class PlexNotLinked(PlexConfigError):
    """No Plex server is linked (or the link lost its URL, token or identity)."""

    kind = "not_linked"


class SectionChoiceError(ValueError):
    """A section that cannot become a library; ``code`` is not_found, conflict or validation_error."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class LinkState:
    """What may be shown about the link: never the token, only whether one is stored."""

    url: str
    machine_identifier: str
    verify_tls: bool
    timeout: int
    token_set: bool

    @property
    def linked(self) -> bool:
        return bool(self.url and self.token_set and self.machine_identifier)

    def as_json(self) -> dict[str, Any]:
        return {"linked": self.linked, "url": self.url or None,
                "machine_identifier": self.machine_identifier or None, "verify_tls": self.verify_tls,
                "timeout": self.timeout, "token_set": self.token_set}


@dataclass(frozen=True)
class LinkResult:
    identity: PlexIdentity
    previous_identifier: str | None  # set when a different server was linked before


@dataclass(frozen=True)
class SectionView:
    """A section of the server with the library that manages it, if any."""

    section: PlexSection
    library_id: int | None
    library_name: str | None

    def as_json(self) -> dict[str, Any]:
        return {"key": self.section.key, "title": self.section.title, "type": self.section.type,
                "locations": list(self.section.locations), "library_id": self.library_id,
                "library_name": self.library_name}


def link_state(values: Mapping[str, Any]) -> LinkState:
    return LinkState(url=values.get("plex_url") or "", machine_identifier=values.get("plex_machine_identifier") or "",
                     verify_tls=bool(values.get("plex_verify_tls", True)),
                     timeout=int(values.get("plex_timeout") or 10), token_set=bool(values.get("plex_token")))


def connection(values: Mapping[str, Any]) -> PlexConnection:
    """The linked server's connection, checked against its machine identifier; PlexNotLinked if none."""
    state = link_state(values)
    if not state.linked:
        raise PlexNotLinked("no Plex server is linked: link one on the Plex page first")
    return PlexConnection(state.url, values["plex_token"], timeout=float(state.timeout),
                          verify_tls=state.verify_tls, machine_identifier=state.machine_identifier)


def current_connection(session: Session) -> PlexConnection:
    return connection(settings_store.load_all(session))


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower().rstrip("."), port


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs reach the same scheme, host and port (the path may differ)."""
    origin = _origin(url)
    return origin is not None and origin == _origin(other)


def link_server(session: Session, url: str, token: str, *, verify_tls: bool = True,
                timeout: int | None = None) -> LinkResult:
    """Check URL and token against the server's identity, then store the link (and only then).

    A blank token keeps the stored one, so the path, the TLS choice or the timeout can change
    without typing the token again; but only while scheme, host and port stay the same, so the
    write-only token is never sent to a server nobody gave it for. Any PlexError leaves the
    settings as they were.
    """
    values = settings_store.load_all(session)
    seconds = int(values.get("plex_timeout") or 10) if timeout is None else timeout
    registry.parse_value("plex_timeout", seconds)
    clean_url = plex.normalize_url(url)
    token = (token or "").strip()
    if not token and values.get("plex_token"):
        if not same_origin(clean_url, values.get("plex_url") or ""):
            raise PlexConfigError("the Plex token must be typed again when the server's scheme, host or port "
                                  "changes (the stored token is only ever sent to the server it was given for)")
        token = values["plex_token"]
    identity = plex.link(clean_url, token, timeout=float(seconds), verify_tls=verify_tls)
    previous = values.get("plex_machine_identifier") or None
    settings_store.set_many(session, {
        "plex_url": clean_url, "plex_token": token, "plex_machine_identifier": identity.machine_identifier,
        "plex_verify_tls": verify_tls, "plex_timeout": seconds})
    session.commit()
    replaced = previous if previous and previous != identity.machine_identifier else None
    return LinkResult(identity, replaced)


def unlink(session: Session) -> None:
    """Forget URL, token and identity; Plex libraries stay (their files and history too)."""
    settings_store.set_many(session, dict.fromkeys(LINK_KEYS, ""))
    session.commit()


def check(session: Session) -> PlexIdentity:
    """The linked server answers as itself with the stored token (PlexError otherwise)."""
    return plex.check_connection(current_connection(session))


def managed_sections(session: Session) -> dict[str, Library]:
    rows = session.scalars(select(Library).where(Library.kind == "plex", Library.plex_section_key.is_not(None)))
    return {library.plex_section_key: library for library in rows if library.plex_section_key}


def sections(session: Session) -> list[SectionView]:
    """The server's movie and TV sections, each with the library managing it."""
    managed = managed_sections(session)
    result = []
    for section in plex.list_sections(current_connection(session)):
        library = managed.get(section.key)
        result.append(SectionView(section, library.id if library else None, library.name if library else None))
    return result


def _free_name(session: Session, title: str) -> str:
    taken = {name.casefold() for name in session.scalars(select(Library.name))}
    base = (title or "Plex").strip()[:190] or "Plex"
    for candidate in (base, f"{base} (Plex)", *(f"{base} (Plex {n})" for n in range(2, 100))):
        if candidate.casefold() not in taken:
            return candidate
    raise SectionChoiceError("conflict", f"no free library name for {title!r}", "name")


def manage_section(session: Session, section_key: str, *, name: str | None = None,
                   profile: Mapping[str, Any] | None = None, path_mappings: Sequence[Any] | None = None,
                   rescan_interval_minutes: int | None = None, enabled: bool = True) -> Library:
    """Make one of the server's movie or TV sections a CodecShift library (kind ``plex``)."""
    key = str(section_key).strip()
    managed = managed_sections(session)
    if key in managed:
        raise SectionChoiceError("conflict", f"section {key} is already managed by library "
                                 f"{managed[key].name!r}", "section_key")
    found = {s.key: s for s in plex.list_sections(current_connection(session))}
    section = found.get(key)
    if section is None:
        raise SectionChoiceError("not_found", f"the Plex server has no movie or TV section {key!r}",
                                 "section_key")
    try:
        checked_profile = registry.validate_profile(dict(profile or {}))
    except registry.SettingError as exc:
        raise SectionChoiceError("validation_error", str(exc), f"profile.{exc.key}") from None
    try:
        mappings = pathmap.mappings_to_json(pathmap.validate_mappings(list(path_mappings or [])))
    except pathmap.PathMappingError as exc:
        raise SectionChoiceError("validation_error", f"path_mappings: {exc}", "path_mappings") from None
    if name and name.strip():
        chosen = name.strip()
        if session.scalar(select(Library.id).where(Library.name == chosen)) is not None:
            raise SectionChoiceError("conflict", f"a library named {chosen!r} already exists", "name")
    else:
        chosen = _free_name(session, section.title)
    library = Library(name=chosen, kind="plex", roots=list(section.locations), plex_section_key=section.key,
                      plex_section_type=section.type, profile=checked_profile, path_mappings=mappings,
                      rescan_interval_minutes=rescan_interval_minutes, enabled=enabled)
    session.add(library)
    session.commit()
    return library


# -- webhooks: which library a path belongs to ---------------------------------------


def within(path: str, root: str) -> bool:
    """``path`` is ``root`` or below it, component by component (Windows paths without case)."""
    return pathmap.to_local(path, [pathmap.PathMapping(root, root)]).mapping_used is not None


def find_library(libraries: Sequence[Library], path: str, sender: str | None = None) -> tuple[Library, str] | None:
    """The library holding a path a sender reported, and the path as that library stores it.

    Sonarr and Radarr see the disks their own way: a library mapping whose
    node is the sender's name (``sonarr``/``radarr``) translates back first.
    The deepest matching root wins when libraries nest.
    """
    best: tuple[int, Library, str] | None = None
    for library in libraries:
        own = pathmap.to_source(path, library.path_mappings or [], node=sender).path if sender else path
        for root in library.roots or []:
            if within(own, root):
                depth = len(root.replace("\\", "/").rstrip("/").split("/"))
                if best is None or depth > best[0]:
                    best = (depth, library, own)
    return (best[1], best[2]) if best else None


def library_for_section(session: Session, section_key: str | None) -> Library | None:
    if not section_key:
        return None
    return session.scalar(select(Library).where(Library.kind == "plex",
                                                Library.plex_section_key == str(section_key)))


# -- refresh after a replacement -------------------------------------------------------


@dataclass(frozen=True)
class RefreshOutcome:
    """What the refresh of one job's folder did; ``result`` is None when it did not apply."""

    applies: bool
    message: str
    result: RefreshResult | None = None

    @property
    def temporary_failure(self) -> bool:
        return bool(self.result and not self.result.ok and self.result.error_kind in ("unreachable", "server_error",
                                                                                      "timeout"))


def refresh_target(session: Session, job: Job) -> tuple[str, str] | str:
    """(section key, Plex's folder) to rescan after ``job``, or why there is none."""
    library = session.get(Library, job.library_id) if job.library_id else None
    if library is None or library.kind != "plex" or not library.plex_section_key:
        return "not a Plex library"
    media = session.get(MediaFile, job.media_file_id) if job.media_file_id else None
    path = media.path if media is not None else job.path  # the output's path when the container changed
    return library.plex_section_key, pathmap.parent_folder(path)


def refresh_after_job(session: Session, job_id: int, *, attempts: int = 4, backoff: float = 1.0,
                      deadline: float = 30.0, retry_in: float | None = None) -> RefreshOutcome:
    """Ask Plex to rescan the folder of a replaced file and record the outcome in the job's events.

    Never raises for Plex's sake and never changes the job's status: the file
    is already converted. ``retry_in`` says when the caller will try again
    after a temporary failure (None: this was the last try); the event says so.
    """
    job = session.get(Job, job_id)
    if job is None:
        return RefreshOutcome(False, f"job {job_id} no longer exists")
    target = refresh_target(session, job)
    if isinstance(target, str):
        return RefreshOutcome(False, target)
    section_key, folder = target
    values = settings_store.load_all(session)
    if not values["plex_refresh_after_replace"]:
        return RefreshOutcome(False, "plex_refresh_after_replace is off")
    try:
        conn = connection(values)
    except PlexNotLinked as exc:
        job_service.add_event(session, job, "plex_refresh_skipped", exc.message)
        session.commit()
        return RefreshOutcome(False, exc.message)
    result = plex.refresh_folder(conn, section_key, folder, attempts=attempts, backoff=backoff, deadline=deadline)
    if result.ok:
        message = f"Plex asked to rescan {folder} (section {section_key})"
        outcome = RefreshOutcome(True, message, result)
        job_service.add_event(session, job, "plex_refreshed", message)
    else:
        outcome = RefreshOutcome(True, "", result)
        if not outcome.temporary_failure:
            then = "not retried"
        elif retry_in is not None:
            then = f"will try again in {retry_in:g} s"
        else:
            then = "no more tries; Plex will find the change at its next scheduled scan"
        message = (f"Plex refresh of {folder} (section {section_key}) failed after {result.attempts} "
                   f"tries: {result.error} ({then})")
        outcome = RefreshOutcome(True, message, result)
        job_service.add_event(session, job, "plex_refresh_failed", message)
    session.commit()
    return outcome
