"""Failed jobs with their reason and the end of their log, newest first."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from codecshift.models import FAILED, Job
from web.api import api_blueprint as bp
from web.api.history_schemas import FailuresQuery
from web.api.jobs_api import job_json
from web.api.paging import count_rows
from web.api.routing import api_route
from web.extensions import db


def tail(text: str | None, lines: int) -> str:
    if not text or lines <= 0:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def failures_page(session: Session, query: FailuresQuery) -> tuple[list[Job], int]:
    stmt = select(Job).where(Job.status == FAILED)
    if query.library_id:
        stmt = stmt.where(Job.library_id == query.library_id)
    if query.node:
        stmt = stmt.where(Job.node == query.node)
    if query.q:
        stmt = stmt.where(Job.path.contains(query.q, autoescape=True))
    total = count_rows(session, stmt)
    rows = session.scalars(stmt.order_by(Job.finished_at.desc(), Job.id.desc())
                           .offset((query.page - 1) * query.per_page).limit(query.per_page))
    return list(rows), total


@api_route(bp, "/failures", ("GET",), summary="Failed jobs with reason and log tail", role="read",
           tag="jobs", query=FailuresQuery)
def list_failures(query: FailuresQuery) -> Any:
    """Newest first; filter by library, node and path text; each with the last ``lines`` of its log."""
    rows, total = failures_page(db(), query)
    return jsonify({"items": [{**job_json(job), "log_tail": tail(job.log_tail, query.lines)} for job in rows],
                    "page": query.page, "per_page": query.per_page, "total": total})
