"""History: finished transcodes, and the stats built from them (space saved over time,
summaries per node, encoder, source codec and library)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from codecshift.models import History, utcnow
from codecshift.services import history_stats
from web.api import api_blueprint as bp
from web.api.conditional import json_with_etag
from web.api.errors import not_found
from web.api.history_schemas import FIRST_DAY, HistoryQuery, StatsQuery, last_day
from web.api.paging import count_rows
from web.api.routing import api_route
from web.extensions import db, engine


def history_json(row: History) -> dict[str, Any]:
    saved = row.size_before - row.size_after
    return {
        "id": row.id, "job_id": row.job_id, "library_id": row.library_id, "path": row.path,
        "source_codec": row.source_codec, "target_codec": row.target_codec, "size_before": row.size_before,
        "size_after": row.size_after, "saved_bytes": saved,
        "saved_percent": round(100.0 * saved / row.size_before, 2) if row.size_before else 0.0,
        "quality_metric": row.quality_metric, "quality_score": row.quality_score, "node": row.node,
        "encoder": row.encoder, "encode_seconds": row.encode_seconds, "total_seconds": row.total_seconds,
        "finished_at": row.finished_at.isoformat(),
    }


def history_page(session: Session, query: HistoryQuery) -> tuple[list[History], int]:
    """One page of history, newest first, and how many rows match."""
    stmt = select(History)
    for column, value in ((History.node, query.node), (History.encoder, query.encoder),
                          (History.source_codec, query.source_codec), (History.library_id, query.library_id)):
        if value is not None and value != "":
            stmt = stmt.where(column == value)
    if query.since:
        stmt = stmt.where(History.finished_at >= _start_of(query.since))
    if query.until:
        stmt = stmt.where(History.finished_at < _start_of(query.until + timedelta(days=1)))
    if query.q:
        stmt = stmt.where(History.path.contains(query.q, autoescape=True))
    total = _count(session, query, stmt)
    rows = session.scalars(stmt.order_by(History.finished_at.desc(), History.id.desc())
                           .offset((query.page - 1) * query.per_page).limit(query.per_page))
    return list(rows), total


def _count(session: Session, query: HistoryQuery, stmt: Any) -> int:
    """From the daily totals when at most one of node, encoder, codec or library is chosen and no
    path text; otherwise by counting the matching rows."""
    chosen = [(name, value) for name, value in (("node", query.node), ("encoder", query.encoder),
                                                ("source_codec", query.source_codec),
                                                ("library", str(query.library_id) if query.library_id else None))
              if value]
    if query.q or len(chosen) > 1:
        return count_rows(session, stmt)
    dimension, key = chosen[0] if chosen else (None, None)
    return history_stats.count_rows(session, dimension=dimension, key=key, since=query.since, until=query.until)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@api_route(bp, "/history", ("GET",), summary="Finished transcodes", role="read", tag="history",
           query=HistoryQuery)
def list_history(query: HistoryQuery) -> Any:
    """Newest first; filter by node, encoder, source codec, library, UTC days and path text; paged."""
    rows, total = history_page(db(), query)
    return jsonify({"items": [history_json(row) for row in rows], "page": query.page,
                    "per_page": query.per_page, "total": total})


@api_route(bp, "/history/<int:history_id>", ("GET",), summary="One finished transcode", role="read",
           tag="history")
def get_history(history_id: int) -> Any:
    row = db().get(History, history_id)
    if row is None:
        raise not_found("history entry", history_id)
    return jsonify(history_json(row))


# -- stats ----------------------------------------------------------------------------


def resolve_range(query: StatsQuery, today: date | None = None) -> tuple[date | None, date | None]:
    today = today or utcnow().date()
    if query.since is not None or query.until is not None:
        return query.since, query.until
    if query.days is not None:
        return max(FIRST_DAY, today - timedelta(days=query.days - 1)), today
    return None, None


MAX_BUCKETS = 1000
COARSER = {"day": "week", "week": "month"}


def bucket_count(first: date, last: date, bucket: str) -> int:
    if bucket == "day":
        return (last - first).days + 1
    if bucket == "week":
        return (bucket_start(last, "week") - bucket_start(first, "week")).days // 7 + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1


def pick_bucket(bucket: str, first: date, last: date) -> str:
    """The bucket asked for (auto: by the span), coarsened while the series would have more than
    MAX_BUCKETS points, so no range can make a series of millions of points."""
    if bucket == "auto":
        span = (last - first).days
        bucket = "day" if span <= 92 else "week" if span <= 730 else "month"
    while bucket in COARSER and bucket_count(first, last, bucket) > MAX_BUCKETS:
        bucket = COARSER[bucket]
    return bucket


def bucket_start(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def _next_bucket(start: date, bucket: str) -> date:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def series(stats: history_stats.Stats, bucket: str, today: date) -> tuple[str, list[dict[str, Any]]]:
    """Buckets from the range's start (or the first transcode) to its end, empty ones included,
    with the space saved in each and the running total since the very first transcode."""
    days = sorted(stats.by_day)
    first = stats.since or (days[0] if days else today)
    last = stats.until or max(today, days[-1] if days else today)
    # A row stamped by a clock far off (year 1 or 9999) must not stretch the series.
    first, last = min(max(first, FIRST_DAY), last_day()), min(max(last, FIRST_DAY), last_day())
    if first > last:
        first = last
    bucket = pick_bucket(bucket, first, last)
    sums: dict[date, history_stats.Totals] = {}
    for day, totals in stats.by_day.items():
        start = bucket_start(day, bucket)
        target = sums.setdefault(start, history_stats.Totals())
        target.merge(totals)
    points, cumulative = [], stats.saved_before
    start = bucket_start(first, bucket)
    while start <= last:
        totals = sums.get(start, history_stats.Totals())
        saved = totals.size_before - totals.size_after
        cumulative += saved
        points.append({"start": start.isoformat(), "files": totals.files, "saved_bytes": saved,
                       "cumulative_saved_bytes": cumulative})
        start = _next_bucket(start, bucket)
    return bucket, points


def summary(groups: dict[str, history_stats.Totals], names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for key, totals in groups.items():
        row = {"key": key or None, **totals.as_dict()}
        if names is not None:
            row["name"] = names.get(key, "(removed library)" if key else "(no library)")
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["saved_bytes"], r["key"] or ""))


def build_stats(session: Session, query: StatsQuery) -> dict[str, Any]:
    today = utcnow().date()
    since, until = resolve_range(query, today)
    history_stats.refresh(session)
    with history_stats.snapshot(engine()) as conn:
        stats = history_stats.compute(conn, since, until)
        names = history_stats.library_names(conn)
    bucket, points = series(stats, query.bucket, today)
    return {
        "range": {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
                  "bucket": bucket},
        "totals": stats.totals.as_dict(),
        "all_time": stats.all_time.as_dict(),
        "series": points,
        "by_node": summary(stats.by["node"]),
        "by_encoder": summary(stats.by["encoder"]),
        "by_source_codec": summary(stats.by["source_codec"]),
        "by_library": summary(stats.by["library"], names),
    }


@api_route(bp, "/history/stats", ("GET",), summary="Space saved over time and summaries", role="read",
           tag="history", query=StatsQuery, responses={304: "Not modified since the ETag sent in If-None-Match"})
def history_stats_endpoint(query: StatsQuery) -> Any:
    """Totals for the range and all time, a series of space saved per day, week or month (UTC), and
    summaries per node, encoder, source codec and library. Read from daily totals, not the rows."""
    return json_with_etag(build_stats(db(), query))
