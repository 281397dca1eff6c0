"""Jobs (filters, path search, paging, single and bulk actions), one job, and failures."""

from __future__ import annotations

import json
from typing import Any

from flask import abort
from sqlalchemy import select
from sqlalchemy.orm import Session

from codecshift.models import ACTIVE_STATUSES, JOB_STATUSES, Job, JobEvent, Library, Node
from codecshift.services import job_filters
from codecshift.services.publisher import TRANSCODE_QUEUES
from web.api.errors import ApiError
from web.api.failures_api import failures_page, tail
from web.api.history_schemas import FailuresQuery
from web.api.jobs_api import checked_filter
from web.api.paging import count_rows
from web.api.schemas import JobQuery
from web.api.status_api import expected_encoder
from web.dashboard import dashboard_blueprint as bp
from web.dashboard.common import live_page, pages, parse_args
from web.extensions import db
from web.security import login_required_page

# Which actions apply to a job in each status (the services ignore the rest anyway).
ROW_ACTIONS = {
    "queued": ("move_to_top", "cancel", "delete"),
    "awaiting_approval": ("approve", "cancel", "delete"),
    "running": ("cancel",), "verifying": ("cancel",), "replacing": (),
    "done": ("requeue", "delete"), "failed": ("requeue", "delete"), "skipped": ("requeue", "delete"),
    "cancelled": ("requeue", "delete"),
}
ACTION_LABELS = {"requeue": "Requeue", "cancel": "Cancel", "delete": "Delete", "approve": "Approve",
                 "move_to_top": "Move to top"}


def jobs_page(session: Session, query: JobQuery) -> tuple[list[Job], int]:
    """One page of jobs, highest priority then newest first, and how many match."""
    stmt = job_filters.filtered(select(Job), checked_filter(session, query))
    total = count_rows(session, stmt)
    rows = session.scalars(stmt.order_by(Job.priority.desc(), Job.id.desc())
                           .offset((query.page - 1) * query.per_page).limit(query.per_page))
    return list(rows), total


def _choices(session: Session) -> dict[str, Any]:
    return {"statuses": JOB_STATUSES, "queues": TRANSCODE_QUEUES,
            "libraries": session.execute(select(Library.id, Library.name).order_by(Library.name)).all(),
            "node_names": list(session.scalars(select(Node.name).order_by(Node.name)))}


@bp.route("/jobs")
@login_required_page
def jobs() -> Any:
    session = db()
    query, error = parse_args(JobQuery)
    status = 200
    try:
        rows, total = jobs_page(session, query)
    except ApiError as exc:
        error, status = exc.message, 400
        query = query.model_copy(update={"path": None})
        rows, total = jobs_page(session, query)

    def context() -> dict[str, Any]:
        busy = any(job.status in ACTIVE_STATUSES for job in rows)
        active_filter = {k: v for k, v in query.model_dump(include=set(job_filters.FILTER_FIELDS)).items() if v}
        return {"rows": rows, "query": query, "error": error, "p": pages(query.page, query.per_page, total),
                "total": total, "filter_json": json.dumps(active_filter),
                "row_actions": ROW_ACTIONS, "labels": ACTION_LABELS, "encoder_of": expected_encoder,
                "refresh_ms": 2000 if busy else 5000, **_choices(session)}

    return live_page("dashboard/jobs.html", "dashboard/_jobs_live.html", context, status)


@bp.route("/jobs/<int:job_id>")
@login_required_page
def jobs_detail(job_id: int) -> Any:
    session = db()
    job = session.get(Job, job_id)
    if job is None:
        abort(404, f"Job {job_id} does not exist (it may have been deleted).")
    library = session.get(Library, job.library_id) if job.library_id else None

    def context() -> dict[str, Any]:
        events = list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))
        return {"job": job, "library": library, "events": events, "row_actions": ROW_ACTIONS,
                "labels": ACTION_LABELS, "encoder": expected_encoder(job),
                "refresh_ms": 1500 if job.status in ACTIVE_STATUSES else 10000}

    return live_page("dashboard/job.html", "dashboard/_job_live.html", context)


@bp.route("/failures")
@login_required_page
def failures() -> Any:
    session = db()
    query, error = parse_args(FailuresQuery)
    rows, total = failures_page(session, query)

    def context() -> dict[str, Any]:
        active_filter = {k: v for k, v in query.model_dump(include=set(job_filters.FILTER_FIELDS)).items() if v}
        return {"rows": rows, "query": query, "error": error, "p": pages(query.page, query.per_page, total),
                "total": total, "filter_json": json.dumps(active_filter),
                "tail": tail, "refresh_ms": 10000, **_choices(session)}

    return live_page("dashboard/failures.html", "dashboard/_failures_live.html", context)
