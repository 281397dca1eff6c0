"""Jobs: the calls nodes make during an attempt, and what people do with jobs."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import func, select

from codecshift.media.journal import JournalError
from codecshift.models import BulkOperation, Job, JobEvent
from codecshift.services import job_actions, job_filters
from codecshift.services import jobs as job_service
from tasks import names
from web.api import api_blueprint as bp
from web.api.errors import ApiError, not_found
from web.api.paths import inside_library
from web.api.publishing import enqueue, request_dispatch
from web.api.routing import api_route
from web.api.schemas import (
    BulkJobs,
    JobCall,
    JobFilter,
    JobQuery,
    Journal,
    PriorityBody,
    Progress,
    Recovered,
    Result,
)
from web.extensions import db
from web.security import principal_name, require_node


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "kind": job.kind, "library_id": job.library_id, "media_file_id": job.media_file_id,
        "path": job.path, "status": job.status, "reason": job.reason, "priority": job.priority,
        "queue": job.queue, "encoder": job.encoder, "target_codec": job.target_codec, "attempt": job.attempt,
        "cpu_fallback": job.cpu_fallback, "progress": job.progress, "fps": job.fps, "speed": job.speed,
        "eta_seconds": job.eta_seconds, "stage": job.stage, "node": job.node,
        "cancel_requested": job.cancel_requested, "source_size": job.source_size,
        "output_size": job.output_size, "error": job.error,
        "published": job.published_at is not None,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "updated_at": job.updated_at.isoformat() if job.updated_at else None,
    }


# -- node calls ----------------------------------------------------------------


@api_route(bp, "/jobs/<int:job_id>/claim", ("POST",), summary="Claim a queued job", role="node", tag="node-jobs",
           body=JobCall, responses={409: "Not claimable: a duplicate or stale message"})
def claim_job(job_id: int, body: JobCall) -> Any:
    """Only a queued job at the expected attempt becomes running; anything else is 409."""
    require_node(body.node)
    session = db()
    claimed = job_service.claim(session, job_id, body.attempt, body.node)
    if isinstance(claimed, job_service.ClaimRefusal):
        raise ApiError(409, "not_claimable", claimed.reason)
    return jsonify(job_service.claim_spec(session, claimed))


@api_route(bp, "/jobs/<int:job_id>/progress", ("POST",), summary="Report progress", role="node",
           tag="node-jobs", body=Progress)
def job_progress(job_id: int, body: Progress) -> Any:
    """Stores percent, fps, speed, ETA and stage; answers whether to cancel."""
    require_node(body.node)
    accepted, cancel = job_service.report_progress(db(), job_id, body.attempt, body.node,
                                                   body.model_dump(exclude={"node", "attempt"}))
    return jsonify({"accepted": accepted, "cancel": cancel})


@api_route(bp, "/jobs/<int:job_id>/journal", ("PUT",), summary="Record the replacement journal", role="node",
           tag="node-jobs", body=Journal, responses={409: "Not this node's live attempt"})
def job_journal(job_id: int, body: Journal) -> Any:
    """Written before each replacement step; the node takes the step only after a 200."""
    require_node(body.node)
    try:
        saved = job_service.save_journal(db(), job_id, body.attempt, body.node, body.journal)
    except JournalError as exc:
        raise ApiError(400, "invalid_journal", f"journal: {exc}", field="journal") from None
    if not saved:
        raise ApiError(409, "not_live", f"job {job_id} attempt {body.attempt} is not live on {body.node}")
    return jsonify({"recorded": True})


@api_route(bp, "/jobs/<int:job_id>/result", ("POST",), summary="Report the end of an attempt", role="node",
           tag="node-jobs", body=Result, responses={409: "Not this node's live attempt"})
def job_result(job_id: int, body: Result) -> Any:
    require_node(body.node)
    session = db()
    outcome = job_service.JobOutcome(**body.model_dump(exclude={"node", "attempt"}))
    try:
        report = job_service.finish(session, job_id, body.attempt, body.node, outcome)
    except job_service.OutcomeError as exc:
        raise ApiError(400, "validation_error", str(exc), field="output_path") from None
    if report is None:
        raise ApiError(409, "not_live", f"job {job_id} attempt {body.attempt} is not live on {body.node}")
    if report.plex_refresh:
        enqueue(names.PLEX_REFRESH, [job_id])
    if report.notify_failure:
        enqueue(names.NOTIFY, ["job_failed", {"job_id": job_id}])
    if report.library_done:
        job = session.get(Job, job_id)
        enqueue(names.NOTIFY, ["library_done", {"library_id": job.library_id if job else None}])
    request_dispatch()
    return jsonify({"status": report.job_status, "rerouted_to_cpu": report.rerouted_to_cpu})


@api_route(bp, "/jobs/<int:job_id>/recovered", ("POST",), summary="Report a recovered replacement",
           role="node", tag="node-jobs", body=Recovered, responses={409: "Not this node's replacing job"})
def job_recovered(job_id: int, body: Recovered) -> Any:
    """After a restart the node rolled its journal forward or back."""
    require_node(body.node)
    if not job_service.record_recovery(db(), job_id, body.attempt, body.node, body.action, body.message):
        raise ApiError(409, "not_replacing", f"job {job_id} is not replacing on {body.node}")
    request_dispatch()
    return jsonify({"recorded": True})


# -- people ------------------------------------------------------------------


@api_route(bp, "/jobs", ("GET",), summary="List jobs", role="read", tag="jobs", query=JobQuery)
def list_jobs(query: JobQuery) -> Any:
    """Filter by status, library, queue, node and kind; search the path; paged."""
    session = db()
    stmt = job_filters.filtered(select(Job), checked_filter(session, query))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(Job.priority.desc(), Job.id.desc())
                           .offset((query.page - 1) * query.per_page).limit(query.per_page))
    return jsonify({"items": [job_json(job) for job in rows], "page": query.page,
                    "per_page": query.per_page, "total": total})


@api_route(bp, "/jobs/<int:job_id>", ("GET",), summary="One job with its events", role="read", tag="jobs")
def get_job(job_id: int) -> Any:
    session = db()
    job = session.get(Job, job_id)
    if job is None:
        raise not_found("job", job_id)
    events = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
    return jsonify({**job_json(job), "log_tail": job.log_tail, "journal": job.journal, "events": [
        {"attempt": e.attempt, "event": e.event, "node": e.node, "encoder": e.encoder, "message": e.message,
         "log_tail": e.log_tail, "at": e.created_at.isoformat()} for e in events]})


def checked_filter(session: Any, query: JobFilter) -> dict[str, Any]:
    values = {field: getattr(query, field) for field in job_filters.FILTER_FIELDS}
    if values["path"]:
        values["path"] = inside_library(session, values["path"])
    return values


@api_route(bp, "/jobs/actions", ("POST",), summary="Act on many jobs", role="admin", tag="jobs", body=BulkJobs,
           responses={202: "A filter-wide operation was started", 404: "An id does not exist",
                      409: "The action does not apply (e.g. delete of a running job)"})
def bulk_job_action(body: BulkJobs) -> Any:
    """requeue, cancel, delete, approve or move_to_top. With `ids`: done at once, answers which
    jobs changed. With `filter`: every matching job, on the control worker; answers 202 and the
    operation to poll at /api/operations/{id}."""
    if (body.ids is None) == (body.filter is None):
        raise ApiError(400, "validation_error", "ids: send either ids or filter", field="ids")
    if body.ids is not None:
        return _act(body.action, body.ids)
    session = db()
    values = checked_filter(session, body.filter)
    operation = job_actions.start_operation(session, body.action, values, principal_name())
    enqueue(names.BULK_OPERATION, [operation.id])
    return jsonify({"operation": operation_json(operation)}), 202


@api_route(bp, "/operations/<int:operation_id>", ("GET",), summary="A filter-wide operation's progress",
           role="read", tag="jobs")
def get_operation(operation_id: int) -> Any:
    operation = db().get(BulkOperation, operation_id)
    if operation is None:
        raise not_found("operation", operation_id)
    return jsonify(operation_json(operation))


def operation_json(operation: BulkOperation) -> dict[str, Any]:
    return {"id": operation.id, "action": operation.action, "filter": operation.filter,
            "status": operation.status, "total": operation.total, "changed": operation.changed,
            "message": operation.message, "requested_by": operation.requested_by,
            "created_at": operation.created_at.isoformat(),
            "finished_at": operation.finished_at.isoformat() if operation.finished_at else None}


@api_route(bp, "/jobs/<int:job_id>/<any(requeue,cancel,delete,approve,move_to_top):action>", ("POST",),
           summary="Act on one job", role="admin", tag="jobs")
def job_action(job_id: int, action: str) -> Any:
    return _act(action, [job_id])


def _act(action: str, ids: list[int]) -> Any:
    try:
        changed = job_actions.ACTION_FUNCTIONS[action](db(), ids)
    except job_actions.JobActionError as exc:
        status = 404 if "does not exist" in str(exc) else 409
        raise ApiError(status, "not_found" if status == 404 else "conflict", str(exc)) from None
    if action in ("requeue", "approve", "move_to_top"):
        request_dispatch()
    return jsonify({"action": action, "changed": changed})


@api_route(bp, "/jobs/<int:job_id>/priority", ("PUT",), summary="Set a job's priority", role="admin",
           tag="jobs", body=PriorityBody)
def set_job_priority(job_id: int, body: PriorityBody) -> Any:
    try:
        changed = job_actions.set_priority(db(), [job_id], body.priority)
    except job_actions.JobActionError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return jsonify({"changed": changed})
