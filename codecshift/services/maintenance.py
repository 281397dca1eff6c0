"""Beat's housekeeping: leftover temporary files, journals, history retention, rescans."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from codecshift import pathmap, settings_store
from codecshift.media import tempfiles
from codecshift.media.journal import JournalError, load_journal, owner_alive
from codecshift.media.replace import recover
from codecshift.models import (
    LIVE_STATUSES,
    REPLACING,
    SCAN_LIVE_STATUSES,
    History,
    Job,
    Library,
    Node,
    ScanRun,
    utcnow,
)
from codecshift.services import history_stats
from codecshift.services.jobs import apply_recovery, expected_journal
from codecshift.services.scanner import start_scan

log = logging.getLogger(__name__)


@dataclass
class CleanupReport:
    removed: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    kept: int = 0
    errors: list[str] = field(default_factory=list)


def _live_tags(session: Session) -> set[str]:
    rows = session.execute(select(Job.id, Job.attempt).where(Job.status.in_(LIVE_STATUSES)))
    return {tempfiles.job_tag(job_id, attempt) for job_id, attempt in rows}


def cleanup_temp_files(session: Session, now: float | None = None) -> CleanupReport:
    """Tidy what dead attempts left beside the media, older than the cleanup age:
    temporary outputs and partial copies are deleted; a journal (and the original
    it may hold) is rolled forward or back, never deleted; quarantined originals
    past their retention are removed."""
    values = settings_store.load_all(session)
    now = now or time.time()
    max_age = values["cleanup_age_hours"] * 3600
    quarantine_age = values["quarantine_days"] * 86400
    live = _live_tags(session)
    report = CleanupReport()
    for library in session.scalars(select(Library)):
        for root in library.roots or []:
            local = pathmap.to_local(root, library.path_mappings or []).path
            for path in _artifacts(local):
                if tempfiles.is_quarantine_dir(path):
                    _expire_quarantine(path, now, quarantine_age, report)
                    continue
                tag = tempfiles.parse_tag(path)
                try:
                    age = now - os.lstat(path).st_mtime
                except OSError:
                    continue
                if tag is None or tag in live or age < max_age:
                    report.kept += 1
                elif tempfiles.role_of(path) == "journal":
                    _recover(path, report, tag)
                elif tempfiles.is_disposable(path):
                    _remove(path, report)
                else:
                    report.kept += 1  # a held original without its journal: never deleted
    return report


def _remove(path: str, report: CleanupReport) -> None:
    try:
        os.remove(path)
        report.removed.append(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        report.errors.append(f"{path}: {exc.strerror}")


def _recover(journal_path: str, report: CleanupReport, tag: str) -> None:
    try:
        journal = load_journal(journal_path)
        if tempfiles.job_of_tag(tag) is None and owner_alive(journal):
            report.kept += 1  # a `codecshift transcode` still running on this machine
            return
        outcome = recover(journal)
    except (OSError, ValueError) as exc:
        report.errors.append(f"{journal_path}: cannot recover: {exc}")
        return
    report.recovered.append(f"{journal_path}: {outcome.action}")


def _artifacts(root: str) -> list[str]:
    """Our files under ``root``, journals first: recovery may still need the outputs they name."""
    found, journals = [], []
    for folder, dirs, files in os.walk(root):
        for name in list(dirs):
            if tempfiles.is_quarantine_dir(os.path.join(folder, name)):
                found.append(os.path.join(folder, name))
                dirs.remove(name)
        for name in files:
            if tempfiles.is_codecshift_artifact(name) and tempfiles.parse_tag(name) is not None:
                target = journals if tempfiles.role_of(name) == "journal" else found
                target.append(os.path.join(folder, name))
    return journals + found


def _expire_quarantine(folder: str, now: float, max_age: float, report: CleanupReport) -> None:
    if max_age <= 0:
        return
    try:
        names = os.listdir(folder)
    except OSError as exc:
        report.errors.append(f"{folder}: {exc.strerror}")
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            if now - os.lstat(path).st_mtime > max_age:
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
                report.removed.append(path)
        except OSError as exc:
            report.errors.append(f"{path}: {exc.strerror}")


def reconcile_journals(session: Session, stale_after: timedelta | None = None,
                       alive: Set[str] = frozenset()) -> dict[int, str]:
    """Roll ``replacing`` jobs of nodes that are gone forward or back from their journal,
    when this machine sees the files; the node does the same itself when it comes back.
    Nodes that still answer through the broker (``alive``) are left to do it themselves,
    and each job is taken with a conditional update first, so only one party acts."""
    values = settings_store.load_all(session)
    limit = stale_after or timedelta(seconds=values["node_offline_after_seconds"])
    now = utcnow()
    present = set(session.scalars(select(Node.name).where(Node.status != "offline")))
    outcomes: dict[int, str] = {}
    candidates = [job.id for job in session.scalars(select(Job).where(Job.status == REPLACING))
                  if job.node not in alive and job.node not in present
                  and (job.heartbeat_at is None or now - job.heartbeat_at > limit)]
    for job_id in candidates:
        try:
            outcomes[job_id] = _reconcile_one(session, job_id, now)
        except Exception as exc:  # one job's trouble must not stop the others
            session.rollback()
            log.exception("reconciling job %s failed", job_id)
            outcomes[job_id] = f"failed: {exc}"
    return outcomes


def _reconcile_one(session: Session, job_id: int, now: datetime) -> str:
    job = session.get(Job, job_id)
    if job is None or not job.journal:
        return "no journal"
    try:
        expected_journal(session, job).check(job.journal)
    except JournalError as exc:
        return f"journal refused, files left alone: {exc}"
    taken = session.execute(update(Job).where(Job.id == job_id, Job.status == REPLACING, Job.attempt == job.attempt,
                                              Job.node == job.node).values(heartbeat_at=now, stage="recovering")
                            .execution_options(synchronize_session=False))
    session.commit()
    if taken.rowcount != 1:
        return "moved on"
    try:
        outcome = recover(job.journal)
    except FileNotFoundError as exc:
        return f"files not visible here: {exc}"
    session.refresh(job)
    apply_recovery(session, job, outcome.action, outcome.message)
    session.commit()
    return outcome.action


def prune_history(session: Session, now: datetime | None = None) -> int:
    days = settings_store.get(session, "history_retention_days")
    if days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    # Fold every row into the daily totals first: "space saved" is all-time and
    # must count rows that retention removes before anyone opened the dashboard.
    while history_stats.refresh(session):
        pass
    result = session.execute(delete(History).where(History.finished_at < cutoff, History.in_rollup.is_(True)))
    session.commit()
    return result.rowcount


def libraries_due(session: Session, now: datetime | None = None) -> list[int]:
    """Libraries whose rescan interval has passed and that have no live scan."""
    now = now or utcnow()
    values = settings_store.load_all(session)
    busy = set(session.scalars(select(ScanRun.library_id).where(ScanRun.status.in_(SCAN_LIVE_STATUSES))))
    due = []
    for library in session.scalars(select(Library).where(Library.enabled.is_(True))):
        interval = settings_store.effective_for_library(values, library)["rescan_interval_minutes"]
        if interval <= 0 or library.id in busy:
            continue
        if library.last_scan_at is None or now - library.last_scan_at >= timedelta(minutes=interval):
            due.append(library.id)
    return due


def start_due_scans(session: Session, now: datetime | None = None) -> list[int]:
    """Start a scan for every library that is due; returns the new scan ids."""
    scans = []
    for library_id in libraries_due(session, now):
        run, created = start_scan(session, library_id)
        if created:
            scans.append(run.id)
    return scans
