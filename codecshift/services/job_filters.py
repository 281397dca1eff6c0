"""The job filter the jobs list, the jobs page and filter-wide operations share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select

from codecshift import pathmap
from codecshift.models import Job

FILTER_FIELDS = ("status", "library_id", "queue", "node", "kind", "q", "path")


def filtered(stmt: Select[Any], values: dict[str, Any]) -> Select[Any]:
    """Narrow ``stmt`` (over jobs) by the filter; ``path`` must already be checked to lie
    inside a library (the API does that and answers 400 otherwise)."""
    if values.get("status"):
        stmt = stmt.where(Job.status == values["status"])
    if values.get("library_id"):
        stmt = stmt.where(Job.library_id == values["library_id"])
    if values.get("queue"):
        stmt = stmt.where(Job.queue == values["queue"])
    if values.get("node"):
        stmt = stmt.where(Job.node == values["node"])
    if values.get("kind"):
        stmt = stmt.where(Job.kind == values["kind"])
    if values.get("q"):
        stmt = stmt.where(Job.path.contains(values["q"], autoescape=True))
    if values.get("path"):
        folder = values["path"]
        prefix = pathmap.folder_prefix(folder)
        stmt = stmt.where(or_(Job.path == folder, Job.path.startswith(prefix, autoescape=True)))
    return stmt


def matching_ids(_session: Any, values: dict[str, Any]) -> Select[Any]:
    return filtered(select(Job.id), values)
