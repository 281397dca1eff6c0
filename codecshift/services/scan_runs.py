"""Bookkeeping every scan shares (folder and Plex): progress counters on the ScanRun row,
the cancel flag, marking files gone, and the end of the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, select, update

from codecshift.db import session_scope
from codecshift.models import AWAITING_APPROVAL, QUEUED, Job, Library, MediaFile, ScanRun, utcnow


def counter_values(counters: Any) -> dict[str, Any]:
    return {"files_seen": counters.seen, "files_new": counters.new, "files_changed": counters.changed,
            "files_gone": counters.gone, "files_probed": counters.probed, "jobs_created": counters.jobs}


def write_progress(engine: Engine, scan_id: int, counters: Any) -> bool:
    """Store the counters; returns whether someone asked to cancel the scan."""
    with session_scope(engine) as session:
        session.execute(update(ScanRun).where(ScanRun.id == scan_id).values(**counter_values(counters)))
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
