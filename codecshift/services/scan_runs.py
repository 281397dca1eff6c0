"""Bookkeeping every scan shares (folder and Plex): progress counters on the ScanRun row,
the cancel flag, marking files gone, and the end of the run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from codecshift.db import session_scope
from codecshift.models import AWAITING_APPROVAL, QUEUED, Job, Library, MediaFile, ScanRun, utcnow


def begin(session: Session, scan_id: int) -> Library:
    """Take a queued run (a conditional update, so a repeated message starts nothing) and
    return its library."""
    from codecshift.services.scanner import ScanNotQueued

    started = session.execute(update(ScanRun).where(ScanRun.id == scan_id, ScanRun.status == "queued")
                              .values(status="running", started_at=utcnow(), updated_at=utcnow()))
    if started.rowcount != 1:
        raise ScanNotQueued(f"scan {scan_id} is not queued")
    run = session.get(ScanRun, scan_id)
    return session.get(Library, run.library_id)


def counter_values(counters: Any) -> dict[str, Any]:
    return {"files_seen": counters.seen, "files_new": counters.new, "files_changed": counters.changed,
            "files_gone": counters.gone, "files_probed": counters.probed, "jobs_created": counters.jobs}


def write_progress(engine: Engine, scan_id: int, counters: Any) -> bool:
    """Store the counters; returns whether someone asked to cancel the scan."""
    with session_scope(engine) as session:
        session.execute(update(ScanRun).where(ScanRun.id == scan_id).values(**counter_values(counters),
                                                                             updated_at=utcnow()))
        return bool(session.scalar(select(ScanRun.cancel_requested).where(ScanRun.id == scan_id)))


def mark_gone(engine: Engine, ids: Sequence[int], reason: str) -> int:
    """Mark files gone and cancel their jobs that have not started."""
    now = utcnow()
    with session_scope(engine) as session:
        for start in range(0, len(ids), 1000):
            chunk = list(ids[start:start + 1000])
            session.execute(update(MediaFile).where(MediaFile.id.in_(chunk)).values(state="gone", updated_at=now))
            session.execute(update(Job).where(Job.media_file_id.in_(chunk), Job.status.in_(
                (QUEUED, AWAITING_APPROVAL))).values(status="cancelled", error=reason, finished_at=now))
    return len(ids)


def finish(engine: Engine, scan_id: int, library_id: int, status: str, message: str | None, counters: Any,
           **extra: Any) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(update(ScanRun).where(ScanRun.id == scan_id).values(
            status=status, finished_at=now, message=message, **extra, **counter_values(counters)))
        session.execute(update(Library).where(Library.id == library_id).values(last_scan_at=now))


# A queued run whose message never reached a control worker is sent again after this;
# a running one that wrote no progress for this long is failed (its worker died).
RESEND_AFTER = timedelta(minutes=1)
QUIET_LIMIT = timedelta(minutes=15)


def watch(session: Session, now: datetime | None = None) -> tuple[list[int], list[int]]:
    """(queued scans to send again, running scans failed as dead)."""
    now = now or utcnow()
    resend = list(session.scalars(select(ScanRun.id).where(ScanRun.status == "queued",
                                                           ScanRun.updated_at < now - RESEND_AFTER)))
    if resend:
        session.execute(update(ScanRun).where(ScanRun.id.in_(resend)).values(updated_at=now))
    dead = list(session.scalars(select(ScanRun.id).where(ScanRun.status == "running",
                                                         ScanRun.updated_at < now - QUIET_LIMIT)))
    if dead:
        session.execute(update(ScanRun).where(ScanRun.id.in_(dead), ScanRun.status == "running").values(
            status="failed", finished_at=now, updated_at=now,
            message="the scan stopped reporting (its control worker died?); it will run again"))
    session.commit()
    return resend, dead
