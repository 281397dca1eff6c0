"""Tasks of the control worker (queues scan, maintenance, control): it has database
access; nodes never do."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from sqlalchemy import Engine, select

from codecshift.db import engine_for, session_scope
from codecshift.models import REPLACING, Job
from codecshift.services import dispatcher, maintenance, nodes, scanner
from tasks import names
from tasks.publisher import CeleryPublisher, worker_hostname

log = logging.getLogger(__name__)


def _engine(task: Any) -> Engine:
    return engine_for(task.app.codecshift_settings.effective_database_url)


@shared_task(name=names.SCAN_LIBRARY, bind=True)
def scan_library(self: Any, scan_id: int) -> dict[str, int]:
    """Walk a library, probe new and changed files, create jobs, then dispatch. A message for
    a scan that already ran, or was cancelled or resent meanwhile, is acknowledged quietly."""
    try:
        counters = scanner.run_scan(_engine(self), scan_id)
    except scanner.ScanNotQueued as exc:
        log.info("%s", exc)
        return {}
    CeleryPublisher(self.app).enqueue(names.DISPATCH)
    return {"seen": counters.seen, "new": counters.new, "changed": counters.changed, "gone": counters.gone,
            "probed": counters.probed, "jobs": counters.jobs}


@shared_task(name=names.DISPATCH, bind=True)
def dispatch(self: Any) -> dict[str, int]:
    with session_scope(_engine(self)) as session:
        report = dispatcher.dispatch(session, CeleryPublisher(self.app))
    return {"published": report.published, "republished": report.republished}


def _answering(app: Any, node_names: list[str]) -> set[str]:
    """Nodes whose worker answers a Celery ping through the broker. Heartbeats travel
    through the dashboard; when only the dashboard was down, the nodes are fine and
    their encodes must not be taken from them."""
    if not node_names:
        return set()
    wanted = {worker_hostname(name): name for name in node_names}
    try:
        replies = app.control.ping(destination=list(wanted), timeout=2.0) or []
    except Exception as exc:  # the broker is away too: nothing proves the nodes alive
        log.warning("could not ping nodes through the broker: %s", exc)
        return set()
    return {wanted[host] for reply in replies for host in reply if host in wanted}


@shared_task(name=names.REAP_STALE, bind=True)
def reap_stale(self: Any) -> dict[str, Any]:
    """Mark silent nodes offline and return their jobs to the queue, unless the node still
    answers through the broker (then the dashboard was away, not the node)."""
    engine = _engine(self)
    with session_scope(engine) as session:
        stale = nodes.stale_nodes(session)
    alive = _answering(self.app, stale)
    with session_scope(engine) as session:
        report = nodes.reap_stale(session, alive=alive)
        notify_offline = maintenance.settings_store.get(session, "notify_on_node_offline")
    publisher = CeleryPublisher(self.app)
    if report.requeued:
        publisher.enqueue(names.DISPATCH)
    if notify_offline:
        for name in report.offline:
            publisher.enqueue(names.NOTIFY, ["node_offline", {"node": name}])
    return {"offline": report.offline, "requeued": report.requeued, "failed": report.failed,
            "cancelled": report.cancelled, "answering": sorted(alive)}


@shared_task(name=names.CLEANUP, bind=True)
def cleanup(self: Any) -> dict[str, Any]:
    with session_scope(_engine(self)) as session:
        report = maintenance.cleanup_temp_files(session)
    return {"removed": report.removed, "kept": report.kept, "errors": report.errors}


@shared_task(name=names.RECONCILE, bind=True)
def reconcile_journals(self: Any) -> dict[str, str]:
    engine = _engine(self)
    with session_scope(engine) as session:
        owners = sorted({job.node for job in session.scalars(select(Job).where(Job.status == REPLACING)) if job.node})
    alive = _answering(self.app, owners)
    with session_scope(engine) as session:
        outcomes = maintenance.reconcile_journals(session, alive=alive)
    return {str(job_id): action for job_id, action in outcomes.items()}


@shared_task(name=names.WATCH, bind=True)
def watch_background_work(self: Any) -> dict[str, Any]:
    """Send again the scans and bulk operations whose messages were lost (a broker restart,
    a failed enqueue); fail the ones whose worker died, so a library is never stuck."""
    from codecshift.services import job_actions, scan_runs

    with session_scope(_engine(self)) as session:
        scans, dead_scans = scan_runs.watch(session)
        operations, dead_operations = job_actions.watch(session)
    publisher = CeleryPublisher(self.app)
    for scan_id in scans:
        publisher.enqueue(names.SCAN_LIBRARY, [scan_id])
    for operation_id in operations:
        publisher.enqueue(names.BULK_OPERATION, [operation_id])
    return {"resent_scans": scans, "failed_scans": dead_scans, "resent_operations": operations,
            "failed_operations": dead_operations}


@shared_task(name=names.PRUNE_HISTORY, bind=True)
def prune_history(self: Any) -> int:
    with session_scope(_engine(self)) as session:
        return maintenance.prune_history(session)


@shared_task(name=names.RESCAN_DUE, bind=True)
def rescan_due(self: Any) -> list[int]:
    with session_scope(_engine(self)) as session:
        scans = maintenance.start_due_scans(session)
    publisher = CeleryPublisher(self.app)
    for scan_id in scans:
        publisher.enqueue(names.SCAN_LIBRARY, [scan_id])
    return scans


@shared_task(name=names.NOTIFY, bind=True)
def notify(self: Any, event: str, payload: dict[str, Any]) -> bool:
    """Send a notification; a failing notifier never fails anything else."""
    from codecshift.notify import notify_event

    return notify_event(_engine(self), event, payload).ok


@shared_task(name=names.BULK_OPERATION, bind=True)
def bulk_operation(self: Any, operation_id: int) -> dict[str, Any]:
    """Apply a filter-wide job action (requeue all failed jobs, ...) in chunks."""
    from codecshift.services import job_actions, job_filters

    with session_scope(_engine(self)) as session:
        try:
            operation = job_actions.run_operation(session, operation_id, job_filters.matching_ids)
        except job_actions.JobActionError as exc:  # ran already (a resent message)
            log.info("%s", exc)
            return {}
        result = {"action": operation.action, "total": operation.total, "changed": operation.changed}
    if result["action"] in ("requeue", "approve", "move_to_top"):
        CeleryPublisher(self.app).enqueue(names.DISPATCH)
    return result
