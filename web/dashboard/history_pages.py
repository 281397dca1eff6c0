"""History and stats: space saved over time, summaries, and the finished transcodes."""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import ValidationError
from sqlalchemy import select

from codecshift.models import Library, Node
from web.api.history_api import build_stats, history_json, history_page
from web.api.history_schemas import HistoryQuery, StatsQuery
from web.dashboard import dashboard_blueprint as bp
from web.dashboard.charts import saved_chart
from web.dashboard.common import live_page, pages, parse_args
from web.extensions import db
from web.security import login_required_page

RANGES = (("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "a year"), ("all", "all time"))


class ListQuery(HistoryQuery):
    """The list's arguments, plus the chart's range selector (read separately)."""

    range: str | None = None


def stats_query(range_arg: str) -> StatsQuery:
    if range_arg == "all":
        return StatsQuery()
    try:
        return StatsQuery(days=int(range_arg))
    except (ValueError, ValidationError):
        return StatsQuery(days=30)


@bp.route("/history")
@login_required_page
def history() -> Any:
    session = db()
    query, error = parse_args(ListQuery)
    range_arg = request.args.get("range", "30")
    stats = build_stats(session, stats_query(range_arg))
    rows, total = history_page(session, query)

    def context() -> dict[str, Any]:
        return {"stats": stats, "chart": saved_chart(stats["series"], stats["range"]["bucket"]),
                "ranges": RANGES, "range_arg": range_arg, "rows": [history_json(r) for r in rows],
                "query": query, "error": error, "p": pages(query.page, query.per_page, total),
                "libraries": session.execute(select(Library.id, Library.name).order_by(Library.name)).all(),
                "node_names": list(session.scalars(select(Node.name).order_by(Node.name))),
                "refresh_ms": 30000}

    return live_page("dashboard/history.html", "dashboard/_history_live.html", context)
