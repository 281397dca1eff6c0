"""Plex tasks of the control worker: the refresh after a replacement, and queueing the files
a webhook announced. Both talk to Plex; a Plex outage never fails or holds up a transcode."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from sqlalchemy import Engine

from codecshift import plex
from codecshift.db import engine_for, session_scope
from codecshift.models import Library
from codecshift.plex import PlexError
from codecshift.services import plex_link, plex_scan
from codecshift.services.scanner import ScanError
from tasks import names
from tasks.publisher import CeleryPublisher

log = logging.getLogger(__name__)

# refresh_folder retries within one task run (pauses 1, 2, 4 s, at most 30 s in all); after a
# temporary failure the task itself comes back later, these many seconds apart.
REFRESH_ATTEMPTS = 4
REFRESH_BACKOFF = 1.0
REFRESH_DEADLINE = 30.0
REFRESH_RETRY_COUNTDOWNS = (60, 300, 900)
INGEST_RETRY_COUNTDOWNS = (15, 60, 300)


def _engine(task: Any) -> Engine:
    return engine_for(task.app.codecshift_settings.effective_database_url)


@shared_task(name=names.PLEX_REFRESH, bind=True, max_retries=len(REFRESH_RETRY_COUNTDOWNS))
def plex_refresh(self: Any, job_id: int) -> dict[str, Any]:
    """Ask Plex to rescan only the folder of a replaced file; the outcome goes into the job's events."""
    tries = self.request.retries or 0
    retry_in = REFRESH_RETRY_COUNTDOWNS[tries] if tries < len(REFRESH_RETRY_COUNTDOWNS) else None
    with session_scope(_engine(self)) as session:
        outcome = plex_link.refresh_after_job(session, job_id, attempts=REFRESH_ATTEMPTS,
                                              backoff=REFRESH_BACKOFF, deadline=REFRESH_DEADLINE,
                                              retry_in=retry_in)
    if outcome.temporary_failure and retry_in is not None:
        raise self.retry(countdown=retry_in)
    if outcome.result is not None and not outcome.result.ok:
        log.warning("job %s: %s", job_id, outcome.message)
    return {"applies": outcome.applies, "ok": bool(outcome.result and outcome.result.ok),
            "message": outcome.message}


@shared_task(name=names.PLEX_INGEST, bind=True, max_retries=len(INGEST_RETRY_COUNTDOWNS))
def plex_ingest(self: Any, library_id: int, paths: list[str], rating_key: str | None = None,
                source: str = "webhook") -> dict[str, Any]:
    """Record, decide and queue the files a webhook announced (paths as the library stores them),
    or, for Plex, the files of ``rating_key``; then ask for a dispatch."""
    engine = _engine(self)
    candidates = [plex_scan.Candidate(path) for path in paths]
    error = None
    if rating_key:
        try:
            with session_scope(engine) as session:
                library = session.get(Library, library_id)
                section = library.plex_section_key if library else None
                conn = plex_link.current_connection(session)
            items = plex.resolve_item(conn, rating_key)
            candidates += [plex_scan.Candidate(item.path, item) for item in items
                           if not section or not item.section_key or item.section_key == section]
        except PlexError as exc:
            tries = self.request.retries or 0
            if exc.temporary and tries < len(INGEST_RETRY_COUNTDOWNS):
                raise self.retry(countdown=INGEST_RETRY_COUNTDOWNS[tries]) from None
            error = f"Plex item {rating_key}: {exc.message}"
            log.warning("%s webhook for library %s: %s", source, library_id, error)
    try:
        counters = plex_scan.ingest(engine, library_id, candidates)
    except ScanError as exc:  # the library was removed meanwhile
        return {"source": source, "files": 0, "jobs": 0, "error": str(exc)}
    if counters.jobs:
        CeleryPublisher(self.app).enqueue(names.DISPATCH)
    return {"source": source, "files": counters.seen, "new": counters.new, "changed": counters.changed,
            "probed": counters.probed, "decided_from_plex": counters.decided_from_plex,
            "missing": counters.missing, "jobs": counters.jobs, "error": error or "; ".join(counters.errors) or None}
