"""Scanning a Plex library through Plex's metadata, and queueing files webhooks announce.

Plex already knows each file's path, size, container, codec, resolution,
duration and bitrate, so a file is decided from that without probing it,
provided the file the control worker finds (after path mapping) has the size
Plex recorded; when Plex has no usable metadata or is out of date, the file
is probed here as a folder scan would. Every file is still probed on its node
before it is encoded. Fingerprints (size, mtime, inode from a stat here) make
a rescan of an unchanged section cost Plex's listing and a stat per file.

A file Plex lists but the control worker cannot find is recorded as
``missing`` with a message naming the path mapping to fix, and is not queued.
Files that have left Plex are marked gone, unless they came from a webhook
and Plex has not listed them yet while they are still on disk.
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from codecshift import pathmap, plex, settings_store
from codecshift.db import session_scope
from codecshift.media.decide import decide
from codecshift.media.probe import MediaInfo, ProbeError, StreamInfo, probe
from codecshift.models import AWAITING_APPROVAL, QUEUED, Job, Library, MediaFile, ScanRun, utcnow
from codecshift.plex import PlexError, PlexMediaItem
from codecshift.services import plex_link, scan_runs
from codecshift.services.scanner import ScanCounters, ScanError, create_jobs

log = logging.getLogger(__name__)

# Plex does not report the pixel format. decide() reads a missing one as "cannot be decoded";
# a file Plex indexed with a video codec and a resolution is taken as decodable here, and the
# node's probe before encoding checks it for real.
PLEX_PIX_FMT = "unknown (from Plex)"
PROGRESS_SECONDS = 0.5
SUMMARY_COLUMNS = ("container", "video_codec", "width", "height", "bit_depth", "hdr", "duration", "bitrate",
                   "audio_streams", "subtitle_streams")


def info_from_plex(item: PlexMediaItem, size: int) -> MediaInfo | None:
    """decide()'s input from Plex's metadata; None when Plex lacks codec, resolution or duration.

    The frame rate is not in Plex's listing, so the bits-per-pixel rule does
    not apply to files decided this way (decide() skips it when unknown);
    the verification's minimum saving still keeps an output that gains nothing.
    """
    if not item.video_codec or not item.width or not item.height or not item.duration:
        return None
    video = StreamInfo(index=0, type="video", codec=item.video_codec, width=item.width, height=item.height,
                       pix_fmt=PLEX_PIX_FMT)
    return MediaInfo(path=item.path, size=size, container=item.container or "unknown", format_name="plex",
                     duration=item.duration, bitrate=item.bitrate, streams=(video,))


@dataclass(frozen=True)
class Candidate:
    """A file to consider: its path as the library stores it, and Plex's description if known."""

    path: str
    item: PlexMediaItem | None = None


@dataclass
class Known:
    id: int
    size: int
    mtime_ns: int
    inode: int
    state: str
    decision: str | None
    rating_key: str | None


@dataclass
class PlexScanCounters(ScanCounters):
    missing: int = 0
    decided_from_plex: int = 0


def load_known(session: Any, library_id: int, paths: Iterable[str] | None = None) -> dict[str, Known]:
    stmt = select(MediaFile.path, MediaFile.id, MediaFile.size, MediaFile.mtime_ns, MediaFile.inode,
                  MediaFile.state, MediaFile.decision, MediaFile.plex_rating_key).where(
        MediaFile.library_id == library_id)
    if paths is not None:
        stmt = stmt.where(MediaFile.path.in_(list(paths)))
    return {row[0]: Known(*row[1:]) for row in session.execute(stmt)}


class Intake:
    """Stat, decide and record files of one library, in batches; shared by scans and webhooks."""

    def __init__(self, engine: Engine, library: Library, settings: Mapping[str, Any],
                 counters: PlexScanCounters, *, prober: Callable[[str], MediaInfo] = probe,
                 decider: Callable[..., Any] = decide) -> None:
        self.engine = engine
        self.library_id = library.id
        self.library_name = library.name
        self.mappings = list(library.path_mappings or [])
        self.settings = settings
        self.counters = counters
        self.prober = prober
        self.decider = decider
        self.rows: list[tuple[str, Known | None, dict[str, Any], Any]] = []
        self.missing_ids: list[int] = []
        self.first_missing: str | None = None

    def consider(self, candidate: Candidate, previous: Known | None) -> None:
        """Queue the row changes for one file; unchanged files cost a stat and nothing else."""
        mapped = pathmap.to_local(candidate.path, self.mappings)
        item = candidate.item
        rating_key = item.rating_key if item else None
        found = _stat(mapped.path)
        if found is None:  # the disk decides: Plex's own "exists" flag is its view, not ours
            self._missing(candidate, previous, mapped)
            return
        info, is_link = found
        if (previous is not None and previous.state not in ("gone", "missing")
                and (previous.size, previous.mtime_ns, previous.inode) == (info.st_size, info.st_mtime_ns,
                                                                             info.st_ino)):
            if rating_key and previous.rating_key != rating_key:
                self.rows.append((candidate.path, previous, {"plex_rating_key": rating_key}, None))
            return
        values: dict[str, Any] = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "inode": info.st_ino,
                                  "probe_error": None, **dict.fromkeys(SUMMARY_COLUMNS), "updated_at": utcnow()}
        if rating_key:
            values["plex_rating_key"] = rating_key
        media_info = info_from_plex(item, info.st_size) if item and item.size == info.st_size else None
        if media_info is not None:
            values.update(plex.to_summary(item))
            self.counters.decided_from_plex += 1
        else:
            try:
                media_info = self.prober(mapped.path)
            except ProbeError as exc:
                values.update(state="error", probe_error=str(exc), decision=f"cannot be read: {exc}")
                self._count(previous)
                self.rows.append((candidate.path, previous, values, None))
                return
            self.counters.probed += 1
            values.update(media_info.summary())
        decision = self.decider(media_info, self.settings, size=info.st_size, is_symlink=is_link)
        values["decision"] = decision.reason
        values["state"] = {"transcode": "queued", "approve": "awaiting_approval"}.get(decision.action, "skipped")
        self._count(previous)
        self.rows.append((candidate.path, previous, values, decision))

    def _count(self, previous: Known | None) -> None:
        if previous is None:
            self.counters.new += 1
        elif previous.state not in ("gone", "missing"):
            self.counters.changed += 1

    def _missing(self, candidate: Candidate, previous: Known | None, mapped: pathmap.MappedPath) -> None:
        self.counters.missing += 1
        message = ("Plex lists this file but the control worker cannot find it: "
                   + pathmap.describe_unreachable(candidate.path, mapped, library=self.library_name))
        self.first_missing = self.first_missing or message
        if previous is not None and previous.state == "missing" and previous.decision == message:
            return
        item = candidate.item
        values: dict[str, Any] = {"state": "missing", "decision": message, "updated_at": utcnow()}
        if item is not None:
            values.update(plex.to_summary(item), plex_rating_key=item.rating_key)
        if previous is None:
            self.counters.new += 1
            values.update(size=(item.size if item and item.size else 0), mtime_ns=0, inode=0)
        else:
            self.missing_ids.append(previous.id)
        self.rows.append((candidate.path, previous, values, None))

    def flush(self) -> None:
        """Write the queued rows and create the jobs, in one transaction."""
        if not self.rows and not self.missing_ids:
            return
        try:
            self._write()
        except IntegrityError:
            # Another writer (a webhook beside a scan) inserted one of these paths meanwhile.
            with session_scope(self.engine) as session:
                fresh = load_known(session, self.library_id, [path for path, *_ in self.rows])
            self.rows = [(path, previous or fresh.get(path), values, decision)
                         for path, previous, values, decision in self.rows]
            self._write()
        self.rows, self.missing_ids = [], []

    def _write(self) -> None:
        decisions = {path: decision for path, _prev, _values, decision in self.rows if decision is not None}
        with session_scope(self.engine) as session:
            new = [{**_NEW_ROW, "updated_at": utcnow(), **values, "library_id": self.library_id, "path": path}
                   for path, previous, values, _ in self.rows if previous is None]
            if new:
                session.execute(insert(MediaFile), new)
            for _path, previous, values, _ in self.rows:
                if previous is not None:
                    session.execute(update(MediaFile).where(MediaFile.id == previous.id).values(**values))
            if self.missing_ids:
                session.execute(update(Job).where(Job.media_file_id.in_(self.missing_ids),
                                                  Job.status.in_((QUEUED, AWAITING_APPROVAL)))
                                .values(status="cancelled", error="the file is missing", finished_at=utcnow()))
            session.flush()
            self.counters.jobs += create_jobs(session, self.library_id, decisions)


# Every new row carries the same columns: one bulk insert needs one set of keys.
_NEW_ROW: dict[str, Any] = {"size": 0, "mtime_ns": 0, "inode": 0, "state": "new", "probe_error": None,
                            "decision": None, "plex_rating_key": None, **dict.fromkeys(SUMMARY_COLUMNS)}


def _stat(path: str) -> tuple[os.stat_result, bool] | None:
    """The file's stat (through a symlink) and whether it is one; None when it is not a reachable file."""
    try:
        link = os.lstat(path)
        info = os.stat(path) if stat_module.S_ISLNK(link.st_mode) else link
    except (OSError, ValueError):
        return None
    if not stat_module.S_ISREG(info.st_mode):
        return None
    return info, stat_module.S_ISLNK(link.st_mode)


class PlexScanner:
    """One scan run of a Plex library; the same ScanRun lock, counters and cancel as folder scans."""

    def __init__(self, engine: Engine, scan_id: int, *, prober: Callable[[str], MediaInfo] = probe,
                 decider: Callable[..., Any] = decide,
                 reader_factory: Callable[..., Any] = plex.SectionReader) -> None:
        self.engine = engine
        self.scan_id = scan_id
        self.prober = prober
        self.decider = decider
        self.reader_factory = reader_factory
        self.counters = PlexScanCounters()
        self._last_progress = 0.0

    def run(self) -> PlexScanCounters:
        with session_scope(self.engine) as session:
            library = scan_runs.begin(session, self.scan_id)
            session.expunge(library)
            values = settings_store.load_all(session)
            settings = settings_store.effective_for_library(values, library)
        self.library = library
        self.intake = Intake(self.engine, library, settings, self.counters, prober=self.prober,
                             decider=self.decider)
        self.batch_size = int(settings["scan_batch_size"])
        try:
            status, message = self._scan(values)
        except Exception as exc:
            self._finish("failed", f"scan failed: {exc}")
            raise
        self._finish(status, message)
        return self.counters

    def _scan(self, values: Mapping[str, Any]) -> tuple[str, str | None]:
        if not self.library.plex_section_key:
            return "failed", "this Plex library has no section key"
        try:
            reader = self.reader_factory(plex_link.connection(values), self.library.plex_section_key)
            total = reader.count()
        except PlexError as exc:
            return "failed", f"Plex: {exc.message}"
        self._update_library(reader.info)
        with session_scope(self.engine) as session:
            session.execute(update(ScanRun).where(ScanRun.id == self.scan_id).values(total=total))
            known = load_known(session, self.library.id)
        seen: set[str] = set()
        try:
            for item in reader.iter_media():
                if item.path in seen:
                    continue
                seen.add(item.path)
                self.counters.seen += 1
                self.intake.consider(Candidate(item.path, item), known.get(item.path))
                if len(self.intake.rows) >= self.batch_size:
                    self.intake.flush()
                if self._progress_and_cancelled():
                    self.intake.flush()
                    return "cancelled", None
        except PlexError as exc:
            self.intake.flush()  # what was read is right; nothing is marked gone from half a listing
            return "failed", f"Plex failed during the listing after {self.counters.seen} files: {exc.message}"
        self.intake.flush()
        self._mark_gone(known, seen)
        return "done", self._message()

    def _message(self) -> str | None:
        parts = []
        if self.counters.missing:
            parts.append(f"{self.counters.missing} files Plex lists are missing here, e.g. "
                         f"{self.intake.first_missing}")
        return "; ".join(parts + self.counters.errors[:5]) or None

    def _update_library(self, section: plex.PlexSection) -> None:
        """Plex's section locations are the library's roots; follow them when they change in Plex."""
        roots = list(section.locations)
        if roots and roots != list(self.library.roots or []):
            with session_scope(self.engine) as session:
                session.execute(update(Library).where(Library.id == self.library.id).values(roots=roots))

    def _mark_gone(self, known: Mapping[str, Known], seen: set[str]) -> None:
        ids = []
        for path, row in known.items():
            if path in seen or row.state == "gone":
                continue
            if row.rating_key is None and _stat(pathmap.to_local(path, self.intake.mappings).path) is not None:
                continue  # from a webhook, still on disk: Plex has not listed it yet
            ids.append(row.id)
        self.counters.gone = scan_runs.mark_gone(self.engine, ids, "the file is gone from Plex")

    def _progress_and_cancelled(self) -> bool:
        """Write the counters and read the cancel flag, at most every PROGRESS_SECONDS."""
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_SECONDS:
            return False
        self._last_progress = now
        return scan_runs.write_progress(self.engine, self.scan_id, self.counters)

    def _finish(self, status: str, message: str | None) -> None:
        scan_runs.finish(self.engine, self.scan_id, self.library.id, status, message, self.counters)


def run_plex_scan(engine: Engine, scan_id: int) -> PlexScanCounters:
    return PlexScanner(engine, scan_id).run()


def ingest(engine: Engine, library_id: int, candidates: Sequence[Candidate], *,
           prober: Callable[[str], MediaInfo] = probe, decider: Callable[..., Any] = decide) -> PlexScanCounters:
    """Record and decide the files a webhook announced, creating their jobs at once.

    New or changed files are decided (from Plex's metadata when the webhook
    came from Plex and it matches the file, otherwise by probing here);
    files already known and unchanged cost nothing.
    """
    counters = PlexScanCounters()
    with session_scope(engine) as session:
        library = session.get(Library, library_id)
        if library is None:
            raise ScanError(f"library {library_id} does not exist")
        session.expunge(library)
        settings = settings_store.effective_for_library(settings_store.load_all(session), library)
        unique = list({c.path: c for c in candidates}.values())
        known = load_known(session, library_id, [c.path for c in unique])
    intake = Intake(engine, library, settings, counters, prober=prober, decider=decider)
    for candidate in unique:
        counters.seen += 1
        intake.consider(candidate, known.get(candidate.path))
    intake.flush()
    if intake.first_missing:
        counters.errors.append(intake.first_missing)
    return counters
