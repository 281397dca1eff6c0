"""Health checks of a whole library, queued with one set-based statement.

A library of 100k files becomes 100k job rows in a single ``INSERT ... SELECT``
run by the database, so the request that asks for it never loads the file list
(DESIGN.md §1: the web writes rows and returns). Files that already have a live
health check job are skipped by the statement itself, and the live-job unique
index settles a race with a second request (``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

from sqlalchemy import and_, exists, literal, select
from sqlalchemy.orm import Session

from codecshift.db import upsert_insert
from codecshift.models import LIVE_STATUSES, QUEUED, Job, MediaFile, utcnow

KIND = "healthcheck"
# Files the control worker cannot reach get no check: every node would fail on them too.
UNCHECKABLE_STATES = ("gone", "missing")
_COLUMNS = ("kind", "library_id", "media_file_id", "path", "status", "priority", "attempt", "target_codec",
            "created_at", "updated_at")


def queue_library(session: Session, library_id: int) -> int:
    """Queue a health check (a full decode on a node) for every present file of the library that
    has no live one; commits and returns how many jobs were created."""
    now = literal(utcnow(), type_=Job.__table__.c.created_at.type)
    live = exists().where(and_(Job.media_file_id == MediaFile.id, Job.kind == KIND,
                               Job.status.in_(LIVE_STATUSES)))
    rows = (select(literal(KIND), MediaFile.library_id, MediaFile.id, MediaFile.path, literal(QUEUED), literal(0),
                   literal(0), literal("hevc"), now, now)
            .where(MediaFile.library_id == library_id, MediaFile.state.not_in(UNCHECKABLE_STATES), ~live)
            .order_by(MediaFile.path))
    insert = upsert_insert(session.get_bind().dialect.name)
    stmt = insert(Job).from_select(list(_COLUMNS), rows, include_defaults=True).on_conflict_do_nothing()
    created = session.execute(stmt).rowcount
    session.commit()
    return max(int(created or 0), 0)
