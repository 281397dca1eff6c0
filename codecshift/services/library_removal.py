"""Removing a library: its waiting jobs end cancelled in the same transaction.

Jobs keep a nullable ``library_id`` (history and finished jobs outlive their
library), so a queued job left behind would be dispatched with the global
profile instead of the library's. Removal therefore cancels the library's
queued and awaiting-approval jobs, with a reason and an event each, and is
refused while one of its jobs is running, verifying or replacing: that job's
node still needs the library's profile and mappings, and a replacement must be
finished or recovered first. The files on disk are never touched; the
library's file records and scan records go with it (foreign keys cascade).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from codecshift.models import (
    ACTIVE_STATUSES,
    AWAITING_APPROVAL,
    CANCELLED,
    QUEUED,
    Job,
    JobEvent,
    Library,
    utcnow,
)

CHUNK = 1000


class LibraryBusy(RuntimeError):
    """The library has jobs a node is working on; nothing was changed."""

    def __init__(self, name: str, active: int) -> None:
        noun = "job is" if active == 1 else "jobs are"
        super().__init__(f"library {name!r} cannot be removed while {active} of its {noun} running, "
                         "verifying or replacing: cancel them or wait until they finish")
        self.active = active


@dataclass(frozen=True)
class Removal:
    library_id: int
    name: str
    cancelled_jobs: int


def _events(session: Session, ids: Sequence[int], message: str) -> None:
    now = literal(utcnow(), type_=JobEvent.__table__.c.created_at.type)
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start:start + CHUNK])
        session.execute(insert(JobEvent).from_select(
            ["job_id", "attempt", "event", "node", "encoder", "message", "created_at"],
            select(Job.id, Job.attempt, literal("cancelled"), Job.node, Job.encoder, literal(message), now)
            .where(Job.id.in_(chunk))))


def remove_library(session: Session, library_id: int) -> Removal | None:
    """Cancel the library's waiting jobs and delete it, in one transaction (None: no such
    library). Raises LibraryBusy, changing nothing, while any of its jobs is active."""
    # The row lock keeps a scan from adding jobs between the cancel and the delete:
    # its inserts wait for this transaction, then fail on the missing library.
    library = session.scalar(select(Library).where(Library.id == library_id).with_for_update())
    if library is None:
        session.rollback()
        return None
    name = library.name
    reason = f"library {name!r} was removed"
    now = utcnow()
    # Cancel first: a node claiming one of these jobs at this moment either wins (and the job
    # is counted as active below) or finds it cancelled; never both.
    cancelled = list(session.scalars(
        update(Job).where(Job.library_id == library_id, Job.status.in_((QUEUED, AWAITING_APPROVAL)))
        .values(status=CANCELLED, error=reason, finished_at=now, updated_at=now)
        .returning(Job.id).execution_options(synchronize_session=False)))
    active = session.scalar(select(func.count()).select_from(Job).where(
        Job.library_id == library_id, Job.status.in_(ACTIVE_STATUSES))) or 0
    if active:
        session.rollback()
        raise LibraryBusy(name, active)
    _events(session, cancelled, reason)
    session.delete(library)
    session.commit()
    return Removal(library_id, name, len(cancelled))
