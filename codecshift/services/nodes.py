"""The node registry: registration, heartbeats, desired state, and the reaper that
returns the work of nodes that went silent to the queue."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from codecshift import settings_store
from codecshift.models import ACTIVE_STATUSES, FAILED, QUEUED, REPLACING, RUNNING, VERIFYING, Job, Node, utcnow
from codecshift.services.jobs import add_event
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


def register(session: Session, reg: Registration) -> Node:
    """Create or refresh a node; its desired state survives restarts."""
    unknown = [queue for queue in reg.queues if queue not in TRANSCODE_QUEUES]
    if unknown:
        raise NodeError(f"unknown queue {unknown[0]!r}; nodes serve {', '.join(TRANSCODE_QUEUES)}")
    node = session.scalar(select(Node).where(Node.name == reg.name))
    now = utcnow()
    if node is None:
        node = Node(name=reg.name)
        session.add(node)
    node.hostname = reg.hostname
    node.version = reg.version
    node.capabilities = reg.capabilities
    node.queues = list(reg.queues)
    node.concurrency = dict(reg.concurrency)
    node.path_mappings = list(reg.path_mappings)
    node.registered_at = now
    node.last_heartbeat = now
    node.status = "paused" if node.desired_state == "paused" else "online"
    node.current_jobs = []
    _requeue_abandoned(session, reg.name)
    session.commit()
    return node


def _requeue_abandoned(session: Session, name: str) -> None:
    """A node that (re)registers runs nothing: its encodes from a previous life are
    abandoned and go back to the queue. Replacements wait for journal recovery."""
    for job in session.scalars(select(Job).where(Job.node == name, Job.status.in_((RUNNING, VERIFYING)))):
        job.status = QUEUED
        job.published_at = None
        job.error = f"node {name} restarted during attempt {job.attempt}"
        add_event(session, job, "requeued", job.error)
        job.node = None


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
    replacing: list[int] = field(default_factory=list)


def reap_stale(session: Session, now: datetime | None = None) -> ReapReport:
    """Mark silent nodes offline and return their running jobs to the queue (up to
    ``max_attempts`` tries, then failed). Jobs in ``replacing`` are left for journal
    reconciliation, never requeued blindly."""
    now = now or utcnow()
    values = settings_store.load_all(session)
    limit = timedelta(seconds=values["node_offline_after_seconds"])
    report = ReapReport()
    for node in session.scalars(select(Node).where(Node.status != "offline")):
        if node.last_heartbeat is None or now - node.last_heartbeat > limit:
            node.status = "offline"
            node.current_jobs = []
            report.offline.append(node.name)
    offline = {node.name for node in session.scalars(select(Node).where(Node.status == "offline"))}
    stale_jobs = session.scalars(select(Job).where(Job.status.in_(ACTIVE_STATUSES)))
    for job in stale_jobs:
        silent = job.heartbeat_at is None or now - job.heartbeat_at > limit
        if not (silent or job.node in offline or job.node is None):
            continue
        if job.status == REPLACING:
            report.replacing.append(job.id)
            continue
        reason = f"node {job.node} went silent during attempt {job.attempt}"
        if job.attempt >= values["max_attempts"]:
            job.status = FAILED
            job.error = f"{reason}; gave up after {job.attempt} attempts"
            job.finished_at = now
            report.failed.append(job.id)
        else:
            job.status = QUEUED
            job.published_at = None
            job.error = reason
            report.requeued.append(job.id)
        add_event(session, job, "reaped", reason)
        job.node = None
    session.commit()
    return report
