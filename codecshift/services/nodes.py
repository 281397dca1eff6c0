"""The node registry: registration, heartbeats, desired state, and the reaper that
returns the work of nodes that went silent to the queue."""

from __future__ import annotations

import logging
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from codecshift import settings_store
from codecshift.media import tempfiles
from codecshift.models import (
    ACTIVE_STATUSES,
    CANCELLED,
    FAILED,
    QUEUED,
    REPLACING,
    RUNNING,
    VERIFYING,
    Job,
    JobEvent,
    Node,
    utcnow,
)
from codecshift.services.publisher import TRANSCODE_QUEUES, Publisher

log = logging.getLogger(__name__)
DESIRED_STATES = ("running", "paused", "drain")
ACTIONS = ("pause", "resume", "drain", "quit")


class NodeError(ValueError):
    """An unknown node or an action that does not apply."""


@dataclass
class Registration:
    name: str
    hostname: str
    version: str
    capabilities: dict[str, Any]
    queues: list[str]
    concurrency: dict[str, int]
    path_mappings: list[Any] = field(default_factory=list)
    current_jobs: list[dict[str, int]] = field(default_factory=list)


def register(session: Session, reg: Registration, owner_key_id: int | None = None) -> Node:
    """Create or refresh a node; its desired state survives restarts. A node key that
    registers a node owns it (the API checks ownership before calling this)."""
    unknown = [queue for queue in reg.queues if queue not in TRANSCODE_QUEUES]
    if unknown:
        raise NodeError(f"unknown queue {unknown[0]!r}; nodes serve {', '.join(TRANSCODE_QUEUES)}")
    node = session.scalar(select(Node).where(Node.name == reg.name))
    now = utcnow()
    if node is None:
        node = Node(name=reg.name)
        session.add(node)
    if owner_key_id is not None:
        node.owner_key_id = owner_key_id
    node.hostname = reg.hostname
    node.version = reg.version
    node.capabilities = reg.capabilities
    node.queues = list(reg.queues)
    node.concurrency = dict(reg.concurrency)
    node.path_mappings = list(reg.path_mappings)
    node.registered_at = now
    node.last_heartbeat = now
    node.status = "paused" if node.desired_state == "paused" else "online"
    node.current_jobs = list(reg.current_jobs)
    _requeue_abandoned(session, reg.name, {(item["job_id"], item["attempt"]) for item in reg.current_jobs})
    session.commit()
    return node


def _requeue_abandoned(session: Session, name: str, still_running: set[tuple[int, int]]) -> None:
    """A node that (re)registers runs only what it says it runs: its other encodes from a
    previous life are abandoned. Replacements wait for journal recovery."""
    values = settings_store.load_all(session)
    for job in session.scalars(select(Job).where(Job.node == name, Job.status.in_((RUNNING, VERIFYING)))):
        if (job.id, job.attempt) not in still_running:
            release(session, job, f"node {name} restarted during attempt {job.attempt}", values["max_attempts"])


def release(session: Session, job: Job, reason: str, max_attempts: int, now: datetime | None = None) -> str:
    """A job whose node let go of it: cancelled if a user asked, failed after too many
    tries, otherwise back in the queue. The change is conditional on the job still being
    where we saw it, so a result that just landed is never overwritten."""
    now = now or utcnow()
    if job.cancel_requested:
        values: dict[str, Any] = {"status": CANCELLED, "error": f"{reason}; cancelled as asked",
                                  "finished_at": now}
    elif job.attempt >= max_attempts:
        values = {"status": FAILED, "error": f"{reason}; gave up after {job.attempt} attempts", "finished_at": now}
    else:
        values = {"status": QUEUED, "published_at": None, "error": reason}
    result = session.execute(update(Job).where(Job.id == job.id, Job.status == job.status,
                                               Job.attempt == job.attempt, Job.node == job.node)
                             .values(**values, node=None, stage=None, journal=None, updated_at=now)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return "moved on"
    session.add(JobEvent(job_id=job.id, attempt=job.attempt, event="reaped", node=job.node, message=reason))
    return values["status"]


def heartbeat(session: Session, name: str, status: str, current_jobs: Sequence[dict[str, int]]) -> Node:
    """Record that ``name`` is alive and what it runs; keeps its jobs' heartbeats fresh."""
    node = get_node(session, name)
    now = utcnow()
    node.last_heartbeat = now
    running = [{"job_id": int(item["job_id"]), "attempt": int(item["attempt"])} for item in current_jobs]
    node.current_jobs = running
    if node.desired_state == "drain" and not running:
        node.desired_state = "paused"
    node.status = _status_for(node.desired_state, bool(running), status)
    for item in running:
        job = session.get(Job, item["job_id"])
        if job is not None and job.node == name and job.attempt == item["attempt"]:
            job.heartbeat_at = now
    session.commit()
    return node


def _status_for(desired: str, busy: bool, reported: str) -> str:
    if desired == "drain":
        return "draining" if busy else "paused"
    if desired == "paused":
        return "paused"
    return "online" if reported != "stopping" else "stopping"


def get_node(session: Session, name: str) -> Node:
    node = session.scalar(select(Node).where(Node.name == name))
    if node is None:
        raise NodeError(f"node {name!r} is not registered")
    return node


def recoverable_jobs(session: Session, node: Node) -> list[dict[str, Any]]:
    """This node's interrupted replacements it is not running: it recovers them while it
    runs (not only at start), so a lost result or a failed roll-back never stays stuck."""
    running = {item["job_id"] for item in node.current_jobs or []}
    jobs = session.scalars(select(Job).where(Job.node == node.name, Job.status == REPLACING))
    return [{"id": job.id, "attempt": job.attempt, "journal": job.journal} for job in jobs
            if job.id not in running and has_current_journal(job)]


def cancel_requests_for(session: Session, node: Node) -> list[int]:
    """Ids of this node's running jobs a user asked to cancel."""
    ids = [item["job_id"] for item in node.current_jobs or []]
    if not ids:
        return []
    return list(session.scalars(select(Job.id).where(Job.id.in_(ids), Job.cancel_requested.is_(True))))


def control(session: Session, publisher: Publisher, name: str, action: str) -> Node:
    """Pause, resume, drain or quit a node: stored as its desired state (so it survives
    the node's restart) and sent at once through Celery's remote control."""
    if action not in ACTIONS:
        raise NodeError(f"unknown action {action!r}; use {', '.join(ACTIONS)}")
    node = get_node(session, name)
    if action == "pause":
        node.desired_state = "paused"
        node.status = "paused"
    elif action == "resume":
        node.desired_state = "running"
        node.status = "online" if node.status != "offline" else "offline"
    elif action == "drain":
        busy = bool(node.current_jobs)
        node.desired_state = "drain" if busy else "paused"
        node.status = "draining" if busy else "paused"
    else:
        node.status = "stopping"
    session.commit()
    remote = {"pause": "pause", "drain": "pause", "resume": "resume", "quit": "shutdown"}[action]
    # A message the node already prefetched is refused at claim and goes back to
    # the dispatcher, so pausing is immediate without touching the broker.
    try:
        publisher.node_control(node.name, remote, node.queues or [])
    except Exception as exc:  # the node's next heartbeat applies the stored state anyway
        log.warning("remote control of %s failed (%s); its heartbeat will apply it", name, exc)
    return node


@dataclass
class ReapReport:
    offline: list[str] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    replacing: list[int] = field(default_factory=list)


def stale_nodes(session: Session, now: datetime | None = None) -> list[str]:
    """Nodes whose heartbeat is older than the offline limit (candidates for the reaper)."""
    now = now or utcnow()
    limit = timedelta(seconds=settings_store.get(session, "node_offline_after_seconds"))
    return [node.name for node in session.scalars(select(Node).where(Node.status != "offline"))
            if node.last_heartbeat is None or now - node.last_heartbeat > limit]


def reap_stale(session: Session, now: datetime | None = None, alive: Set[str] = frozenset()) -> ReapReport:
    """Mark silent nodes offline and let go of their jobs (``release``). ``alive`` are nodes
    that answered through the broker although their heartbeats did not reach the dashboard
    (the dashboard was down, not the node): they and their jobs are left alone. Jobs in
    ``replacing`` with a journal of their attempt wait for journal recovery; one without
    (the node died before its first step) is released like a running one."""
    now = now or utcnow()
    values = settings_store.load_all(session)
    limit = timedelta(seconds=values["node_offline_after_seconds"])
    report = ReapReport()
    for node in session.scalars(select(Node).where(Node.status != "offline")):
        if node.name in alive:
            continue
        if node.last_heartbeat is None or now - node.last_heartbeat > limit:
            node.status = "offline"
            node.current_jobs = []
            report.offline.append(node.name)
    offline = {node.name for node in session.scalars(select(Node).where(Node.status == "offline"))}
    for job in list(session.scalars(select(Job).where(Job.status.in_(ACTIVE_STATUSES)))):
        if job.node in alive:
            continue
        silent = job.heartbeat_at is None or now - job.heartbeat_at > limit
        if not (silent or job.node in offline or job.node is None):
            continue
        if job.status == REPLACING and has_current_journal(job):
            report.replacing.append(job.id)
            continue
        outcome = release(session, job, f"node {job.node} went silent during attempt {job.attempt}",
                          values["max_attempts"], now)
        {QUEUED: report.requeued, FAILED: report.failed, CANCELLED: report.cancelled}.get(
            outcome, []).append(job.id)
    session.commit()
    return report


def has_current_journal(job: Job) -> bool:
    return bool(job.journal) and job.journal.get("tag") == tempfiles.job_tag(job.id, job.attempt)
