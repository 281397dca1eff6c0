"""Overview: a card per node with its live encodes, queue counts, space saved, failures."""

from __future__ import annotations

from typing import Any

from codecshift.models import JOB_STATUSES
from web.api.status_api import build_status
from web.dashboard import dashboard_blueprint as bp
from web.dashboard.common import live_page
from web.extensions import db
from web.security import login_required_page


def _context() -> dict[str, Any]:
    status = build_status(db())
    busy = any(node["jobs"] for node in status["nodes"]) or bool(status["unassigned_jobs"])
    return {"status": status, "statuses": JOB_STATUSES, "refresh_ms": 1000 if busy else 5000}


@bp.route("/")
@login_required_page
def overview() -> Any:
    return live_page("dashboard/overview.html", "dashboard/_overview_live.html", _context)
