"""Library scans on the control worker: walk, fingerprint, probe what changed, decide.

A rescan of an unchanged library costs a directory walk with stat and one
dictionary lookup per file: the fingerprint (size, mtime_ns, inode) of every
known file is loaded once, and only new or changed files are probed, in
batches. One scan per library runs at a time: the live ScanRun row is guarded
by a partial unique index, which works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codecshift import pathmap, settings_store
from codecshift.db import session_scope, upsert_insert
from codecshift.media import tempfiles
from codecshift.media.decide import decide
from codecshift.media.probe import ProbeError, probe
from codecshift.models import (
    AWAITING_APPROVAL,
    QUEUED,
    SCAN_LIVE_STATUSES,
    Job,
    Library,
    MediaFile,
    ScanRun,
    utcnow,
)
from codecshift.services import scan_runs

VIDEO_EXTENSIONS = frozenset({
    ".mkv", ".mp4", ".m4v", ".avi", ".mov", ".wmv", ".ts", ".m2ts", ".mts", ".webm", ".mpg", ".mpeg",
    ".flv", ".vob", ".ogv", ".3gp", ".divx", ".xvid", ".asf", ".rm", ".rmvb",
})
PROGRESS_EVERY = 5000
IN_CHUNK = 5000
ARTIFACT_PREFIX = tempfiles.PREFIX


class ScanError(RuntimeError):
    """A scan that could not start or finish (unknown library, unreadable root)."""


class ScanNotQueued(ScanError):
    """The run already started, ended or was cancelled: a late or repeated message."""


@dataclass
class Seen:
    """One file found on disk."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    is_symlink: bool


@dataclass
class ScanCounters:
    seen: int = 0
    new: int = 0
    changed: int = 0
    gone: int = 0
    probed: int = 0
    jobs: int = 0
    errors: list[str] = field(default_factory=list)


def start_scan(session: Session, library_id: int, kind: str = "scan") -> tuple[ScanRun, bool]:
    """The live scan of this library: a new one, or the one already queued or running."""
    if session.get(Library, library_id) is None:
        raise ScanError(f"library {library_id} does not exist")
    run = ScanRun(library_id=library_id, kind=kind, status="queued")
    session.add(run)
    try:
        session.commit()
        return run, True
    except IntegrityError:
        session.rollback()
        live = session.scalar(select(ScanRun).where(ScanRun.library_id == library_id,
                                                    ScanRun.status.in_(SCAN_LIVE_STATUSES)))
        if live is None:  # finished between our insert and this read: try once more
            return start_scan(session, library_id, kind)
        return live, False


def cancel_scan(session: Session, scan_id: int) -> bool:
    """A running scan stops at its next batch; one still waiting for a worker ends at once."""
    now = utcnow()
    waiting = session.execute(update(ScanRun).where(ScanRun.id == scan_id, ScanRun.status == "queued")
                              .values(status="cancelled", cancel_requested=True, finished_at=now, updated_at=now))
    running = session.execute(update(ScanRun).where(ScanRun.id == scan_id, ScanRun.status == "running")
                              .values(cancel_requested=True))
    session.commit()
    return waiting.rowcount + running.rowcount == 1


def walk(root: str, exclude: frozenset[str] = frozenset()) -> Iterator[Seen]:
    """Every video file under ``root``, skipping CodecShift's own temporary files and
    quarantine folders and the folders in ``exclude`` (the backup folder of kept originals,
    should it lie inside a library); unreadable folders are skipped, not fatal."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if name.startswith(ARTIFACT_PREFIX):  # our temporary files and quarantine folders
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.path not in exclude:
                            stack.append(entry.path)
                        continue
                    if os.path.splitext(name)[1].lower() not in VIDEO_EXTENSIONS:
                        continue
                    link = entry.is_symlink()
                    info = entry.stat(follow_symlinks=True)
                except OSError:
                    continue
                yield Seen(entry.path, info.st_size, info.st_mtime_ns, info.st_ino, link)


def _fingerprints(session: Session, library_id: int) -> dict[str, tuple[int, int, int, int, str]]:
    rows = session.execute(select(MediaFile.path, MediaFile.id, MediaFile.size, MediaFile.mtime_ns,
                                  MediaFile.inode, MediaFile.state).where(MediaFile.library_id == library_id))
    return {path: (ident, size, mtime, inode, state) for path, ident, size, mtime, inode, state in rows}


def _source_translator(local_root: str, root: str, mappings: Sequence[Any]) -> Callable[[str], str]:
    """Local path -> library path. Without mappings (or when the root maps one to one)
    it is a string operation, not a mapping lookup per file: rescans walk 100k files."""
    if not mappings:
        return lambda path: path
    if pathmap.to_source(local_root, mappings).path == root and local_root != root:
        head = local_root.rstrip("/")
        base = root.rstrip("/")
        return lambda path: base + path[len(head):] if path.startswith(head + "/") else \
            pathmap.to_source(path, mappings).path
    return lambda path: pathmap.to_source(path, mappings).path


class Scanner:
    """One scan run; ``prober`` and ``decider`` are the media engine's functions."""

    def __init__(self, engine: Engine, scan_id: int, *, prober: Callable[[str], Any] = probe,
                 decider: Callable[..., Any] = decide) -> None:
        self.engine = engine
        self.scan_id = scan_id
        self.prober = prober
        self.decider = decider
        self.counters = ScanCounters()

    def run(self) -> ScanCounters:
        with session_scope(self.engine) as session:
            library = scan_runs.begin(session, self.scan_id)
            self.library_id = library.id
            self.roots = list(library.roots or [])
            self.mappings = list(library.path_mappings or [])
            self.settings = settings_store.effective_for_library(settings_store.load_all(session), library)
        try:
            status = self._scan()
        except Exception as exc:
            self._finish("failed", f"scan failed: {exc}")
            raise
        self._finish(status, "; ".join(self.counters.errors[:5]) or None)
        return self.counters

    def _scan(self) -> str:
        with session_scope(self.engine) as session:
            known = _fingerprints(session, self.library_id)
        seen_paths: set[str] = set()
        batch: list[tuple[Seen, tuple[int, int, int, int, str] | None]] = []
        batch_size = int(self.settings["scan_batch_size"])
        scanned_roots: list[str] = []
        backup = self.settings.get("backup_folder") or ""
        excluded = frozenset({os.path.normpath(os.path.expanduser(backup))} if backup else ())
        for root in self.roots:
            local_root = pathmap.to_local(root, self.mappings).path
            if not os.path.isdir(local_root):
                self.counters.errors.append(f"root {local_root} is not a readable folder")
                continue
            scanned_roots.append(root.rstrip("/") + "/")
            to_source = _source_translator(local_root, root, self.mappings)
            for item in walk(local_root, excluded):
                source_path = item.path = to_source(item.path)
                seen_paths.add(source_path)
                self.counters.seen += 1
                previous = known.get(source_path)
                if previous is None or previous[1:4] != (item.size, item.mtime_ns, item.inode) or previous[4] == "gone":
                    batch.append((item, previous))
                if len(batch) >= batch_size:
                    self._process(batch)
                    batch = []
                    if self._progress_and_cancelled():
                        return "cancelled"
                if self.counters.seen % PROGRESS_EVERY == 0 and self._progress_and_cancelled():
                    return "cancelled"
        if batch:
            self._process(batch)
        if self._progress_and_cancelled():
            return "cancelled"
        if self.roots and not scanned_roots:
            return "failed"  # never mark a whole library gone because its share is unmounted
        # Only files under a root that was readable can be gone; an unmounted root says nothing.
        self._mark_gone([ident for path, (ident, *_rest, state) in known.items()
                         if path not in seen_paths and state != "gone" and path.startswith(tuple(scanned_roots))])
        return "done"

    def _probe(self, item: Seen) -> tuple[Mapping[str, Any], Any, str | None]:
        local = pathmap.to_local(item.path, self.mappings).path
        try:
            info = self.prober(local)
        except ProbeError as exc:
            return {}, None, str(exc)
        self.counters.probed += 1
        return info.summary(), info, None

    def _process(self, batch: Sequence[tuple[Seen, tuple[int, int, int, int, str] | None]]) -> None:
        rows_new: list[dict[str, Any]] = []
        updates: list[tuple[int, dict[str, Any]]] = []
        decisions: dict[str, Any] = {}
        for item, previous in batch:
            summary, info, error = self._probe(item)
            values: dict[str, Any] = {
                "size": item.size, "mtime_ns": item.mtime_ns, "inode": item.inode, "probe_error": error,
                "container": None, "video_codec": None, "width": None, "height": None, "bit_depth": None,
                "hdr": None, "duration": None, "bitrate": None, "audio_streams": None,
                "subtitle_streams": None, **summary, "updated_at": utcnow()}
            if error:
                values.update(state="error", decision=f"cannot be read: {error}")
            else:
                decision = self.decider(info, self.settings, size=item.size, is_symlink=item.is_symlink)
                decisions[item.path] = decision
                values["decision"] = decision.reason
                values["state"] = {"transcode": "queued", "approve": "awaiting_approval"}.get(
                    decision.action, "skipped")
            if previous is None:
                rows_new.append({"library_id": self.library_id, "path": item.path, **values})
                self.counters.new += 1
            else:
                updates.append((previous[0], values))
                self.counters.changed += previous[4] != "gone"
        with session_scope(self.engine) as session:
            if rows_new:  # a webhook may have recorded one of them meanwhile: that row stands
                insert_new = upsert_insert(session.get_bind().dialect.name)(MediaFile)
                session.execute(insert_new.on_conflict_do_nothing(index_elements=["library_id", "path"]), rows_new)
            for ident, values in updates:
                session.execute(update(MediaFile).where(MediaFile.id == ident).values(**values))
            stale = [ident for ident, values in updates if values["state"] not in ("queued", "awaiting_approval")]
            if stale:  # changed into something not worth converting (an HEVC release, say)
                session.execute(update(Job).where(Job.media_file_id.in_(stale), Job.kind == "transcode",
                                                  Job.status.in_((QUEUED, AWAITING_APPROVAL)))
                                .values(status="cancelled", finished_at=utcnow(),
                                        error="the file changed and is no longer worth converting"))
            session.flush()
            self._create_jobs(session, decisions)

    def _create_jobs(self, session: Session, decisions: Mapping[str, Any]) -> None:
        self.counters.jobs += create_jobs(session, self.library_id, decisions)

    def _mark_gone(self, ids: list[int]) -> None:
        if ids:
            self.counters.gone = scan_runs.mark_gone(self.engine, ids, "the file is gone")

    def _progress_and_cancelled(self) -> bool:
        return scan_runs.write_progress(self.engine, self.scan_id, self.counters)

    def _finish(self, status: str, message: str | None) -> None:
        scan_runs.finish(self.engine, self.scan_id, self.library_id, status, message, self.counters,
                         total=self.counters.seen)


_JOB_COLUMNS = ("kind", "library_id", "media_file_id", "path", "status", "reason", "target_codec", "priority",
                "attempt", "cpu_fallback", "progress", "cancel_requested", "source_size", "source_mtime_ns",
                "created_at", "updated_at")


def create_jobs(session: Session, library_id: int, decisions: Mapping[str, Any]) -> int:
    """Jobs for the files of ``decisions`` (path -> Decision) that should be converted or
    approved and have no live job yet. The files' rows (with the decision's reason) are
    already written, so each (status, codec) group is one INSERT ... SELECT on the server;
    the partial unique index turns a file that already has a live job into a no-op.
    Returns how many jobs were created."""
    groups: dict[tuple[str, str], list[str]] = {}
    for path, decision in decisions.items():
        if decision.action in ("transcode", "approve"):
            status = QUEUED if decision.action == "transcode" else AWAITING_APPROVAL
            groups.setdefault((status, decision.codec), []).append(path)
    insert_jobs = upsert_insert(session.get_bind().dialect.name)
    now = utcnow()
    created = 0
    for (status, codec), paths in groups.items():
        for start in range(0, len(paths), IN_CHUNK):  # SQLite allows only so many bound values
            rows = select(literal("transcode"), MediaFile.library_id, MediaFile.id, MediaFile.path, literal(status),
                          MediaFile.decision, literal(codec), literal(0), literal(0), literal(False), literal(0.0),
                          literal(False), MediaFile.size, MediaFile.mtime_ns, literal(now), literal(now)).where(
                MediaFile.library_id == library_id, MediaFile.path.in_(paths[start:start + IN_CHUNK]))
            result = session.execute(insert_jobs(Job).from_select(list(_JOB_COLUMNS), rows).on_conflict_do_nothing())
            created += max(int(result.rowcount or 0), 0)
    return created


def run_scan(engine: Engine, scan_id: int) -> ScanCounters:
    """Run a queued scan with the scanner for its library's kind: folders are walked, Plex
    libraries read through Plex (codecshift.services.plex_scan)."""
    with session_scope(engine) as session:
        kind = session.scalar(select(Library.kind).join(ScanRun, ScanRun.library_id == Library.id)
                              .where(ScanRun.id == scan_id))
    if kind == "plex":
        from codecshift.services.plex_scan import PlexScanner

        return PlexScanner(engine, scan_id).run()
    return Scanner(engine, scan_id).run()
