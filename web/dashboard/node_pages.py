"""Nodes: pause, resume, drain, quit, cancel the current job; capabilities and concurrency."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from codecshift import settings_store
from codecshift.models import ACTIVE_STATUSES, Job, Node
from web.api.nodes_api import node_json
from web.api.status_api import active_job_json
from web.dashboard import dashboard_blueprint as bp
from web.dashboard.common import live_page
from web.extensions import db
from web.security import login_required_page


def _context() -> dict[str, Any]:
    session = db()
    offline_after = settings_store.get(session, "node_offline_after_seconds")
    nodes = [node_json(node, offline_after) for node in session.scalars(select(Node).order_by(Node.name))]
    jobs: dict[str, list[dict[str, Any]]] = {}
    for job in session.scalars(select(Job).where(Job.status.in_(ACTIVE_STATUSES)).order_by(Job.id)):
        jobs.setdefault(job.node or "", []).append(active_job_json(job))
    for node in nodes:
        node["jobs"] = jobs.get(node["name"], [])
        encoders = (node["capabilities"] or {}).get("encoders", {})
        node["encoders"] = sorted(encoders.items())
    busy = any(node["jobs"] for node in nodes)
    return {"nodes": nodes, "refresh_ms": 1000 if busy else 4000}


@bp.route("/nodes")
@login_required_page
def nodes() -> Any:
    return live_page("dashboard/nodes.html", "dashboard/_nodes_live.html", _context)
