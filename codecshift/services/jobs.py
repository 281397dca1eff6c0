"""A job's life in the database: claim, progress, journal, result, and the user's actions.

Every transition is a conditional UPDATE on (id, status, attempt), so a
duplicate delivery, a stale node or two clicks at once find nothing to change
instead of corrupting a job (DESIGN.md §4).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from codecshift import pathmap, settings_store
from codecshift.media import tempfiles
from codecshift.media.journal import validate_journal
from codecshift.models import (
    ACTIVE_STATUSES,
    AWAITING_APPROVAL,
    CANCELLED,
    DONE,
    FAILED,
    FINAL_STATUSES,
    LIVE_STATUSES,
    QUEUED,
    REPLACING,
    RUNNING,
    SKIPPED,
    VERIFYING,
    History,
    Job,
    JobEvent,
    Library,
    MediaFile,
    Node,
    utcnow,
)

LOG_TAIL_LIMIT = 8000
# Only the recorded journal makes a job "replacing" (save_journal): a job is never
# replacing without a journal that says how to finish or undo it.
STAGE_STATUS = {"encoding": RUNNING, "verifying": VERIFYING}


@dataclass
class ClaimRefusal:
    reason: str


@dataclass
class JobOutcome:
    """What a node reports at the end of an attempt."""

    status: str  # done | skipped | failed | cancelled
    code: str | None = None
    reason: str = ""
    encoder: str | None = None
    family: str | None = None
    stage: str | None = None
    source_codec: str | None = None
    source_size: int | None = None
    output_size: int | None = None
    output_path: str | None = None
    output_mtime_ns: int | None = None
    output_inode: int | None = None
    quality_metric: str | None = None
    quality_score: float | None = None
    encode_seconds: float = 0.0
    total_seconds: float = 0.0
    log_tail: str | None = None
    health: str | None = None  # healthcheck jobs: ok | corrupt


@dataclass
class FinishReport:
    """What happened to the job, and the follow-up work the caller should enqueue."""

    job_status: str
    rerouted_to_cpu: bool = False
    plex_refresh: bool = False
    notify_failure: bool = False
    library_done: bool = False
    follow_ups: list[str] = field(default_factory=list)


def add_event(session: Session, job: Job, event: str, message: str | None = None,
              log_tail: str | None = None) -> None:
    session.add(JobEvent(job_id=job.id, attempt=job.attempt, event=event, node=job.node,
                         encoder=job.encoder, message=message,
                         log_tail=log_tail[-LOG_TAIL_LIMIT:] if log_tail else None))


def claim(session: Session, job_id: int, attempt: int, node_name: str) -> Job | ClaimRefusal:
    """Make a queued job with the expected attempt running on ``node_name``."""
    settings = settings_store.load_all(session)
    node = session.scalar(select(Node).where(Node.name == node_name))
    unpublish = update(Job).where(Job.id == job_id, Job.status == QUEUED, Job.attempt == attempt)
    if node is None:
        return ClaimRefusal(f"node {node_name!r} is not registered")
    if settings["queue_paused"] or node.desired_state != "running":
        # Give the message back to the dispatcher: it republishes once work may flow again.
        session.execute(unpublish.values(published_at=None))
        session.commit()
        why = "the queue is paused" if settings["queue_paused"] else f"node {node_name} is {node.desired_state}"
        return ClaimRefusal(why)
    job = session.get(Job, job_id)
    if job is not None and job.kind == "transcode" and job.queue and not _node_can(node, job.queue, job.target_codec):
        # Another node on this queue can do it: hand the message back to the dispatcher.
        session.execute(unpublish.values(published_at=None))
        session.commit()
        return ClaimRefusal(f"node {node_name} has no working {job.target_codec} encoder on {job.queue}")
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == QUEUED, Job.attempt == attempt)
        .values(status=RUNNING, attempt=Job.attempt + 1, node=node_name, started_at=now, heartbeat_at=now,
                progress=0.0, fps=None, speed=None, eta_seconds=None, stage="starting", journal=None,
                error=None, updated_at=now)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.rollback()
        job = session.get(Job, job_id)
        state = "missing" if job is None else f"{job.status} at attempt {job.attempt}"
        return ClaimRefusal(f"job {job_id} is not claimable (expected queued at attempt {attempt}, "
                            f"found {state})")
    job = session.get(Job, job_id)
    session.refresh(job)
    add_event(session, job, "claimed", f"claimed by {node_name}")
    session.commit()
    return job


def _node_can(node: Node, queue: str, codec: str) -> bool:
    families = (node.capabilities or {}).get("families")
    if families is None:  # a node that does not say: trust its queue subscription
        return True
    return codec in families.get(queue, [])


def _live_attempt(session: Session, job_id: int, attempt: int, node_name: str) -> Job | None:
    job = session.get(Job, job_id)
    if job is None or job.attempt != attempt or job.node != node_name or job.status not in ACTIVE_STATUSES:
        return None
    return job


def report_progress(session: Session, job_id: int, attempt: int, node_name: str,
                    values: dict[str, Any]) -> tuple[bool, bool]:
    """Store progress; returns (accepted, cancel_requested)."""
    job = _live_attempt(session, job_id, attempt, node_name)
    if job is None:
        return False, True
    now = utcnow()
    stage = values.get("stage")
    changes: dict[str, Any] = {"heartbeat_at": now, "updated_at": now}
    for key in ("progress", "fps", "speed", "eta_seconds"):
        if values.get(key) is not None:
            changes[key] = values[key]
    if stage:
        changes["stage"] = stage
        if stage in STAGE_STATUS and job.status != REPLACING:
            changes["status"] = STAGE_STATUS[stage]
    session.execute(update(Job).where(Job.id == job_id, Job.attempt == attempt, Job.node == node_name,
                                      Job.status.in_(ACTIVE_STATUSES)).values(**changes)
                    .execution_options(synchronize_session=False))
    session.commit()
    return True, bool(job.cancel_requested)


def save_journal(session: Session, job_id: int, attempt: int, node_name: str,
                 journal: dict[str, Any]) -> bool:
    """Record the replacement journal before the node takes the step it describes."""
    job = _live_attempt(session, job_id, attempt, node_name)
    if job is None:
        return False
    expected_journal(session, job).check(journal)
    job.journal = journal
    job.status = REPLACING
    job.stage = "replacing"
    job.heartbeat_at = utcnow()
    session.commit()
    return True


class OutcomeError(ValueError):
    """A result that names a file this job could not have produced."""


def check_output_path(job_path: str, output_path: str) -> None:
    """The output replaces the job's file: same folder, same name, perhaps a new extension."""
    clean = os.path.normpath(output_path)
    if clean != output_path or os.path.dirname(clean) != os.path.dirname(job_path) \
            or os.path.splitext(clean)[0] != os.path.splitext(job_path)[0]:
        raise OutcomeError(f"output_path {output_path!r} is not {job_path} or a new extension of it")


@dataclass
class ExpectedJournal:
    """What a job's journal may name: its file as its node sees it, its tag, the backup folder."""

    source: str
    tag: str
    backup_folder: str

    def check(self, journal: dict[str, Any]) -> None:
        validate_journal(journal, source=self.source, tag=self.tag, backup_folder=self.backup_folder or None)


def node_view(session: Session, job: Job, node_name: str | None) -> str:
    """The job's file as ``node_name`` sees it (None: as the control worker sees it)."""
    library = session.get(Library, job.library_id) if job.library_id else None
    node = session.scalar(select(Node).where(Node.name == node_name)) if node_name else None
    overrides = [(m["from"], m["to"]) for m in (node.path_mappings or [])] if node else []
    return pathmap.to_local(job.path, library.path_mappings or [] if library else [], node=node_name,
                            node_overrides=overrides).path


def expected_journal(session: Session, job: Job) -> ExpectedJournal:
    library = session.get(Library, job.library_id) if job.library_id else None
    values = settings_store.effective_for_library(settings_store.load_all(session), library)
    return ExpectedJournal(source=node_view(session, job, job.node), tag=tempfiles.job_tag(job.id, job.attempt),
                           backup_folder=values["backup_folder"])


def finish(session: Session, job_id: int, attempt: int, node_name: str, outcome: JobOutcome) -> FinishReport | None:
    """Record the end of an attempt; None when the attempt is not the job's live one."""
    job = _live_attempt(session, job_id, attempt, node_name)
    if job is None:
        return None
    if outcome.output_path is not None:
        check_output_path(job.path, outcome.output_path)
    settings = settings_store.load_all(session)
    now = utcnow()
    if outcome.code == "recovery_failed" and job.status == REPLACING:
        # The original may be held beside the output: the node retries the journal on its
        # heartbeats; the job stays replacing, visibly, until the files are whole again.
        job.error = outcome.reason
        job.heartbeat_at = now
        add_event(session, job, "recovery_pending", outcome.reason, outcome.log_tail)
        session.commit()
        return FinishReport(job_status=REPLACING)
    job.finished_at = now
    job.heartbeat_at = now
    job.updated_at = now
    job.encoder = outcome.encoder or job.encoder
    job.log_tail = outcome.log_tail[-LOG_TAIL_LIMIT:] if outcome.log_tail else None
    job.output_size = outcome.output_size
    job.fps = job.speed = job.eta_seconds = None
    report = FinishReport(job_status=outcome.status)
    media = session.get(MediaFile, job.media_file_id) if job.media_file_id else None
    if job.kind == "healthcheck":
        _finish_healthcheck(job, media, outcome, now)
    elif outcome.status == DONE:
        _finish_done(session, job, media, outcome, now)
        library = session.get(Library, job.library_id) if job.library_id else None
        report.plex_refresh = bool(library and library.kind == "plex" and settings["plex_refresh_after_replace"])
    elif outcome.status == FAILED and _should_reroute(job, outcome, settings):
        job.error = f"{outcome.encoder or job.queue} failed ({outcome.reason}); re-routed to cpu"
        job.status = QUEUED
        job.cpu_fallback = True
        job.queue = "cpu"
        job.published_at = None
        job.node = None
        report.job_status = QUEUED
        report.rerouted_to_cpu = True
    else:
        job.status = outcome.status if outcome.status in FINAL_STATUSES else FAILED
        job.error = outcome.reason or None
        job.reason = outcome.reason or job.reason
        if media is not None:
            media.state = {SKIPPED: "skipped", CANCELLED: media.state, FAILED: "failed"}.get(job.status, "failed")
            if job.status == SKIPPED:
                media.decision = outcome.reason
        report.notify_failure = job.status == FAILED and settings["notify_on_failure"]
    add_event(session, job, f"finished:{report.job_status}", outcome.reason or None, outcome.log_tail)
    session.flush()
    if job.library_id and report.job_status in FINAL_STATUSES:
        live = session.scalar(select(func.count()).select_from(Job).where(  # waiting for approval is not work
            Job.library_id == job.library_id, Job.status.in_(LIVE_STATUSES), Job.status != AWAITING_APPROVAL))
        report.library_done = live == 0 and settings["notify_on_library_done"]
    session.commit()
    return report


def _should_reroute(job: Job, outcome: JobOutcome, settings: dict[str, Any]) -> bool:
    family = outcome.family or job.queue
    return (settings["hardware_fallback_to_cpu"] and not job.cpu_fallback and family not in (None, "cpu")
            and outcome.stage in (None, "encoding", "starting"))


def _finish_done(session: Session, job: Job, media: MediaFile | None, outcome: JobOutcome, now: Any) -> None:
    job.status = DONE
    job.progress = 100.0
    job.error = None
    started = job.started_at or now
    session.add(History(
        job_id=job.id, library_id=job.library_id, path=outcome.output_path or job.path,
        source_codec=outcome.source_codec, target_codec=job.target_codec,
        size_before=outcome.source_size or job.source_size or 0, size_after=outcome.output_size or 0,
        quality_metric=outcome.quality_metric, quality_score=outcome.quality_score, node=job.node,
        encoder=outcome.encoder, encode_seconds=outcome.encode_seconds,
        total_seconds=outcome.total_seconds or (now - started).total_seconds(), finished_at=now))
    if media is not None:
        _record_output(session, media, job.target_codec, outcome.output_path or media.path, outcome.output_size,
                       outcome.output_mtime_ns, outcome.output_inode)


def _finish_healthcheck(job: Job, media: MediaFile | None, outcome: JobOutcome, now: Any) -> None:
    job.status = DONE if outcome.status in (DONE, SKIPPED) or outcome.health else outcome.status
    if outcome.status == CANCELLED:
        job.status = CANCELLED
    job.error = outcome.reason or None
    if media is not None and outcome.health in ("ok", "corrupt"):
        media.health = outcome.health
        media.health_message = outcome.reason or None
        media.health_checked_at = now


def node_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Settings as a node may see them: every secret left out."""
    from codecshift import registry

    return {key: value for key, value in values.items() if not registry.REGISTRY[key].secret}


def claim_spec(session: Session, job: Job) -> dict[str, Any]:
    """Everything a node needs to run a claimed job, and nothing secret."""
    library = session.get(Library, job.library_id) if job.library_id else None
    values = settings_store.effective_for_library(settings_store.load_all(session), library)
    return {
        "job": {
            "id": job.id, "attempt": job.attempt, "kind": job.kind, "path": job.path,
            "target_codec": job.target_codec, "queue": job.queue, "cpu_fallback": job.cpu_fallback,
            "approved": bool(session.scalar(select(func.count()).select_from(JobEvent).where(
                JobEvent.job_id == job.id, JobEvent.event == "approved"))),
            "library": {"id": library.id, "name": library.name} if library else None,
            "path_mappings": list(library.path_mappings or []) if library else [],
        },
        "settings": node_settings(values),
    }


def record_recovery(session: Session, job_id: int, attempt: int, node_name: str, action: str,
                    message: str) -> bool:
    """A node rolled an interrupted replacement forward or back."""
    job = session.get(Job, job_id)
    if job is None or job.status != REPLACING or job.attempt != attempt or job.node != node_name:
        return False
    apply_recovery(session, job, action, message)
    session.commit()
    return True


def apply_recovery(session: Session, job: Job, action: str, message: str) -> None:
    """Record how a journal was brought to an end (by its node or by the control worker)."""
    now = utcnow()
    job.finished_at = now
    journal = job.journal or {}
    if action == "rolled_forward":
        job.status = DONE
        job.error = None
        final = journal.get("final") or job.path
        output_path = os.path.splitext(job.path)[0] + os.path.splitext(final)[1]
        media = session.get(MediaFile, job.media_file_id) if job.media_file_id else None
        if media is not None:
            _record_output(session, media, job.target_codec, output_path, journal.get("output_size"),
                           journal.get("output_mtime_ns"), journal.get("output_inode"))
        session.add(History(
            job_id=job.id, library_id=job.library_id, path=output_path, source_codec=journal.get("source_codec"),
            target_codec=job.target_codec, size_before=int(journal.get("source_size") or job.source_size or 0),
            size_after=int(journal.get("output_size") or 0), node=job.node, encoder=job.encoder, finished_at=now))
    elif action == "conflict":
        job.status = FAILED
        job.error = f"a new file appeared at the path during the swap; both were kept: {message}"
    else:
        job.status = FAILED
        job.error = f"replacement interrupted and rolled back: {message}"
    add_event(session, job, f"recovered:{action}", message)


def _record_output(session: Session, media: MediaFile, codec: str, path: str, size: int | None,
                   mtime_ns: int | None, inode: int | None) -> None:
    """The media row now describes the converted file (its path may have a new extension;
    a row a scan made for that path meanwhile is the same file and gives way)."""
    if path != media.path:
        session.execute(delete(MediaFile).where(MediaFile.library_id == media.library_id, MediaFile.path == path,
                                                MediaFile.id != media.id))
        media.path = path
    media.state = "done"
    media.video_codec = codec
    media.decision = "converted"
    if size is not None:
        media.size = size
    if mtime_ns is not None:
        media.mtime_ns = mtime_ns
    if inode is not None:
        media.inode = inode
