"""What people do with jobs: requeue, cancel, delete, approve, move to top, prioritise.

Each action is a few set-based statements over the ids (in chunks), so a page
selection of hundreds of jobs is one quick request; acting on everything that
matches a filter (100k jobs) runs as an operation on the control worker
(``run_operation``) and the API answers 202 with its id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from codecshift.models import (
    ACTIVE_STATUSES,
    AWAITING_APPROVAL,
    CANCELLED,
    FINAL_STATUSES,
    LIVE_STATUSES,
    QUEUED,
    RUNNING,
    VERIFYING,
    BulkOperation,
    Job,
    JobEvent,
    utcnow,
)

CHUNK = 1000
ACTIONS = ("requeue", "cancel", "delete", "approve", "move_to_top")


class JobActionError(ValueError):
    """A user action that does not apply to a job in its current state."""


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])


def _require(session: Session, ids: Sequence[int]) -> None:
    """Every id must exist; checked before anything changes, so a bad id changes nothing."""
    found: set[int] = set()
    for chunk in _chunks(ids):
        found.update(session.scalars(select(Job.id).where(Job.id.in_(chunk))))
    missing = [job_id for job_id in ids if job_id not in found]
    if missing:
        raise JobActionError(f"job {missing[0]} does not exist")


def _events(session: Session, ids: Sequence[int], event: str, message: str) -> None:
    now = utcnow()
    for chunk in _chunks(ids):
        session.execute(insert(JobEvent).from_select(
            ["job_id", "attempt", "event", "node", "encoder", "message", "created_at"],
            select(Job.id, Job.attempt, literal(event), Job.node, Job.encoder, literal(message), literal(now))
            .where(Job.id.in_(chunk))))


def _ids_where(session: Session, ids: Sequence[int], *conditions: Any) -> list[int]:
    found: list[int] = []
    for chunk in _chunks(ids):
        found.extend(session.scalars(select(Job.id).where(Job.id.in_(chunk), *conditions)))
    return sorted(found)


def _set(session: Session, ids: Sequence[int], *conditions: Any, **values: Any) -> list[int]:
    """Update the jobs still matching ``conditions`` (checked in the same statement, so a job a
    node claimed meanwhile is not touched) and return the ids really changed."""
    changed: list[int] = []
    for chunk in _chunks(ids):
        result = session.execute(update(Job).where(Job.id.in_(chunk), *conditions)
                                 .values(**values, updated_at=utcnow()).returning(Job.id)
                                 .execution_options(synchronize_session=False))
        changed.extend(result.scalars())
    return sorted(changed)


def requeue(session: Session, job_ids: Sequence[int], reason: str = "requeued by user",
            *, strict: bool = True) -> list[int]:
    """Put finished jobs back in the queue. Live ones are left alone, and at most one job
    per file becomes live (the newest), never beside another live one."""
    if strict:
        _require(session, job_ids)
    candidates = []
    for chunk in _chunks(job_ids):
        candidates += session.execute(select(Job.id, Job.media_file_id, Job.kind).where(
            Job.id.in_(chunk), Job.status.in_(FINAL_STATUSES))).all()
    files = sorted({row.media_file_id for row in candidates if row.media_file_id is not None})
    live: set[tuple[int, str]] = set()
    for chunk in _chunks(files):
        live.update((file_id, kind) for file_id, kind in session.execute(select(Job.media_file_id, Job.kind).where(
            Job.media_file_id.in_(chunk), Job.status.in_(LIVE_STATUSES))))
    chosen: dict[Any, int] = {}
    for row in candidates:
        key = (row.media_file_id, row.kind) if row.media_file_id is not None else ("job", row.id)
        if key in live:
            continue
        chosen[key] = max(chosen.get(key, 0), row.id)
    ids = _set(session, sorted(chosen.values()), Job.status.in_(FINAL_STATUSES), status=QUEUED, published_at=None,
               node=None, error=None, cancel_requested=False, cpu_fallback=False, queue=None, progress=0.0,
               finished_at=None, journal=None, stage=None)
    _events(session, ids, "requeued", reason)
    session.commit()
    return ids


def cancel(session: Session, job_ids: Sequence[int], *, strict: bool = True) -> list[int]:
    """Queued jobs end cancelled at once; running ones are asked to stop (the node stops
    ffmpeg, removes the temporary file and reports cancelled)."""
    if strict:
        _require(session, job_ids)
    waiting = _set(session, job_ids, Job.status.in_((QUEUED, AWAITING_APPROVAL)), status=CANCELLED,
                   finished_at=utcnow())
    _events(session, waiting, "cancelled", "cancelled by user")
    running = _set(session, job_ids, Job.status.in_((RUNNING, VERIFYING)), Job.cancel_requested.is_(False),
                   cancel_requested=True)
    _events(session, running, "cancel_requested", "cancel requested by user")
    session.commit()
    return sorted(waiting + running)


def delete(session: Session, job_ids: Sequence[int], *, strict: bool = True) -> list[int]:
    """Delete jobs that are not running; history keeps its figures. With ``strict`` an active
    job in the selection refuses the whole action, otherwise active jobs are skipped."""
    if strict:
        _require(session, job_ids)
        active = _ids_where(session, job_ids, Job.status.in_(ACTIVE_STATUSES))
        if active:
            status = session.scalar(select(Job.status).where(Job.id == active[0]))
            raise JobActionError(f"job {active[0]} is {status}; cancel it first")
    ids: list[int] = []
    for chunk in _chunks(job_ids):
        deleted = session.execute(sql_delete(Job).where(Job.id.in_(chunk), Job.status.not_in(ACTIVE_STATUSES))
                                  .returning(Job.id).execution_options(synchronize_session=False))
        gone = list(deleted.scalars())
        if gone:
            session.execute(sql_delete(JobEvent).where(JobEvent.job_id.in_(gone)))
        ids.extend(gone)
    session.commit()
    return sorted(ids)


def approve(session: Session, job_ids: Sequence[int], *, strict: bool = True) -> list[int]:
    if strict:
        _require(session, job_ids)
    ids = _set(session, job_ids, Job.status == AWAITING_APPROVAL, status=QUEUED, published_at=None)
    _events(session, ids, "approved", "approved by user")
    session.commit()
    return ids


def move_to_top(session: Session, job_ids: Sequence[int], *, strict: bool = True) -> list[int]:
    """Give the jobs priorities above every other queued job, keeping their order."""
    if strict:
        _require(session, job_ids)
    ids = _ids_where(session, job_ids, Job.status.in_((QUEUED, AWAITING_APPROVAL)))
    top = session.scalar(select(func.max(Job.priority)).where(Job.status.in_((QUEUED, AWAITING_APPROVAL)))) or 0
    rows = [{"id": job_id, "priority": top + len(ids) - index} for index, job_id in enumerate(ids)]
    for start in range(0, len(rows), CHUNK):
        session.execute(update(Job), rows[start:start + CHUNK])
    session.commit()
    return ids


def set_priority(session: Session, job_ids: Sequence[int], priority: int) -> list[int]:
    _require(session, job_ids)
    ids = _set(session, job_ids, Job.status.in_((QUEUED, AWAITING_APPROVAL)), priority=priority)
    session.commit()
    return ids


ACTION_FUNCTIONS: dict[str, Callable[..., list[int]]] = {
    "requeue": requeue, "cancel": cancel, "delete": delete, "approve": approve, "move_to_top": move_to_top,
}


# -- filter-wide operations, on the control worker ---------------------------------


def start_operation(session: Session, action: str, job_filter: dict[str, Any], requested_by: str) -> BulkOperation:
    if action not in ACTIONS:
        raise JobActionError(f"unknown action {action!r}")
    operation = BulkOperation(action=action, filter=job_filter, requested_by=requested_by)
    session.add(operation)
    session.commit()
    return operation


def run_operation(session: Session, operation_id: int,
                  matching: Callable[[Session, dict[str, Any]], Any]) -> BulkOperation:
    """Apply the operation's action to every job its filter matches, chunk by chunk.
    ``matching(session, filter)`` returns a SELECT of job ids (the API's own filter)."""
    operation = session.get(BulkOperation, operation_id)
    if operation is None or operation.status != "queued":
        raise JobActionError(f"operation {operation_id} is not queued")
    operation.status = "running"
    operation.started_at = utcnow()
    session.commit()
    try:
        _apply(session, operation, matching)
    except Exception as exc:
        session.rollback()
        operation.status = "failed"
        operation.message = f"stopped after {operation.changed} jobs: {exc}"
        operation.finished_at = utcnow()
        session.commit()
        raise
    return operation


def _apply(session: Session, operation: BulkOperation,
           matching: Callable[[Session, dict[str, Any]], Any]) -> None:
    ids = list(session.scalars(matching(session, operation.filter).order_by(Job.priority.desc(), Job.id)))
    operation.total = len(ids)
    session.commit()
    action = ACTION_FUNCTIONS[operation.action]
    if operation.action == "move_to_top":
        operation.changed = len(action(session, ids, strict=False))
    else:
        for chunk in _chunks(ids):
            operation.changed += len(action(session, chunk, strict=False))
            session.commit()
    operation.status = "done"
    operation.finished_at = utcnow()
    session.commit()


RESEND_AFTER = timedelta(minutes=1)
QUIET_LIMIT = timedelta(minutes=15)


def watch(session: Session, now: datetime | None = None) -> tuple[list[int], list[int]]:
    """(queued operations to send again, running ones failed as dead)."""
    now = now or utcnow()
    resend = list(session.scalars(select(BulkOperation.id).where(
        BulkOperation.status == "queued", BulkOperation.updated_at < now - RESEND_AFTER)))
    if resend:
        session.execute(update(BulkOperation).where(BulkOperation.id.in_(resend)).values(updated_at=now))
    dead = list(session.scalars(select(BulkOperation.id).where(
        BulkOperation.status == "running", BulkOperation.updated_at < now - QUIET_LIMIT)))
    if dead:
        session.execute(update(BulkOperation).where(BulkOperation.id.in_(dead)).values(
            status="failed", finished_at=now, message="its control worker stopped; start it again"))
    session.commit()
    return resend, dead
