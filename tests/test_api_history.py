"""History list and stats: filters, paging, summaries, the series, and the daily rollup
staying exact whether rows are folded in or not (both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from codecshift.db import session_scope
from codecshift.models import History, HistoryDaily, utcnow
from codecshift.services import history_stats
from support.dashboard_app import Dashboard, dashboard_app, error_of


@pytest.fixture
def dash(database_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard_app(database_url, tmp_path) as dashboard:
        yield dashboard


def _seed(dash: Dashboard) -> None:
    today = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    dash.history(2, finished_at=today, node="node-a", encoder="libx265", source_codec="h264",
                 size_before=1000, size_after=400, quality_metric="ssim", quality_score=0.98)
    dash.history(1, finished_at=today - timedelta(days=3), node="node-b", encoder="hevc_nvenc",
                 source_codec="mpeg4", size_before=5000, size_after=1000, path="/media/old/show.mkv")
    dash.history(1, finished_at=today - timedelta(days=40), node="node-b", encoder="libx265",
                 source_codec="h264", size_before=800, size_after=700)


def test_history_list_filters_and_pages(dash: Dashboard) -> None:
    _seed(dash)
    body = dash.api("GET", "/api/history?per_page=2").get_json()
    assert body["total"] == 4 and len(body["items"]) == 2 and body["page"] == 1
    first = body["items"][0]
    assert first["saved_bytes"] == 600 and first["saved_percent"] == 60.0 and first["quality_metric"] == "ssim"
    assert dash.api("GET", "/api/history?per_page=2&page=2").get_json()["items"][1]["size_before"] == 800
    assert dash.api("GET", "/api/history?node=node-b").get_json()["total"] == 2
    assert dash.api("GET", "/api/history?encoder=hevc_nvenc").get_json()["total"] == 1
    assert dash.api("GET", "/api/history?source_codec=h264").get_json()["total"] == 3
    assert dash.api("GET", "/api/history?q=old/show").get_json()["total"] == 1
    since = (utcnow() - timedelta(days=5)).date().isoformat()
    assert dash.api("GET", f"/api/history?since={since}").get_json()["total"] == 3
    one = body["items"][0]["id"]
    assert dash.api("GET", f"/api/history/{one}").get_json()["id"] == one


def test_history_refuses_bad_queries_and_unknown_ids(dash: Dashboard) -> None:
    assert error_of(dash.api("GET", "/api/history/999"))["code"] == "not_found"
    for query, field in (("page=0", "page"), ("per_page=abc", "per_page"), ("per_page=501", "per_page"),
                         ("since=yesterday", "since"), ("library_id=x", "library_id"), ("colour=red", "colour"),
                         ("since=2024-05-02&until=2024-05-01", "until")):
        response = dash.api("GET", f"/api/history?{query}")
        assert response.status_code == 400, query
        assert error_of(response)["field"] == field, query
    assert error_of(dash.api("GET", "/api/history/stats?days=0"))["field"] == "days"
    assert error_of(dash.api("GET", "/api/history/stats?bucket=year"))["field"] == "bucket"
    assert dash.api("GET", "/api/history", key=dash.node_key).status_code == 403


def test_stats_sum_the_range_and_all_time_with_summaries(dash: Dashboard) -> None:
    _seed(dash)
    body = dash.api("GET", "/api/history/stats?days=30").get_json()
    assert body["totals"]["files"] == 3 and body["totals"]["saved_bytes"] == 1200 + 4000
    assert body["all_time"]["files"] == 4 and body["all_time"]["saved_bytes"] == 5300
    assert body["totals"]["ssim_avg"] == 0.98 and body["totals"]["vmaf_avg"] is None
    assert {row["key"]: row["files"] for row in body["by_node"]} == {"node-a": 2, "node-b": 1}
    assert {row["key"]: row["saved_bytes"] for row in body["by_encoder"]} == {"libx265": 1200, "hevc_nvenc": 4000}
    assert body["by_source_codec"][0]["key"] == "mpeg4"  # sorted by space saved
    assert body["by_library"] == [{**body["by_library"][0], "key": None, "name": "(no library)"}]
    series = body["series"]
    assert body["range"]["bucket"] == "day" and len(series) == 30
    assert series[-1]["saved_bytes"] == 1200 and series[-1]["files"] == 2
    assert series[-4]["saved_bytes"] == 4000
    # The running total starts from what was saved before the range (the 40-day-old file).
    assert series[0]["cumulative_saved_bytes"] == 100
    assert series[-1]["cumulative_saved_bytes"] == 5300

    everything = dash.api("GET", "/api/history/stats").get_json()
    assert everything["range"] == {"since": None, "until": None, "bucket": "day"}
    assert everything["totals"] == everything["all_time"]
    weekly = dash.api("GET", "/api/history/stats?days=60&bucket=week").get_json()
    assert weekly["range"]["bucket"] == "week" and sum(p["files"] for p in weekly["series"]) == 4
    assert all(datetime.fromisoformat(p["start"]).weekday() == 0 for p in weekly["series"])
    monthly = dash.api("GET", "/api/history/stats?days=400").get_json()
    assert monthly["range"]["bucket"] == "week"
    assert dash.api("GET", "/api/history/stats?bucket=month").get_json()["series"][0]["start"].endswith("-01")


def test_rollup_folds_rows_once_and_matches_a_rebuild(dash: Dashboard) -> None:
    _seed(dash)
    with session_scope(dash.engine) as session:
        assert history_stats.refresh(session, limit=2) == 2  # a partial fold
    partial = dash.api("GET", "/api/history/stats?days=60").get_json()
    with session_scope(dash.engine) as session:
        assert session.scalar(select(History.id).where(history_stats.PENDING)) is None  # the request folded the rest
        assert history_stats.refresh(session) == 0
        folded = {(r.dimension, r.day, r.key): r.files for r in session.scalars(select(HistoryDaily))}
        history_stats.rebuild(session)
        rebuilt = {(r.dimension, r.day, r.key): r.files for r in session.scalars(select(HistoryDaily))}
    assert folded == rebuilt
    assert dash.api("GET", "/api/history/stats?days=60").get_json() == partial
    # New rows show at once, before any fold.
    dash.history(1, size_before=2000, size_after=1000, node="node-c")
    with dash.engine.connect() as conn:
        assert history_stats.all_time_totals(conn).files == 5
    assert dash.api("GET", "/api/status").get_json()["space_saved"]["saved_bytes"] == 6300


def test_pruned_history_keeps_the_all_time_totals(dash: Dashboard) -> None:
    from codecshift.services.maintenance import prune_history
    from codecshift.settings_store import set_value

    _seed(dash)
    dash.api("GET", "/api/history/stats")  # folds every row
    with session_scope(dash.engine) as session:
        set_value(session, "history_retention_days", 30)
        session.flush()
        assert prune_history(session) == 1
    assert dash.api("GET", "/api/history").get_json()["total"] == 3
    assert dash.api("GET", "/api/history/stats").get_json()["all_time"]["files"] == 4


def test_utc_day_of_aware_and_naive_times() -> None:
    aware = datetime(2024, 5, 1, 23, 30, tzinfo=UTC)
    assert history_stats.utc_day(aware).isoformat() == "2024-05-01"
    assert history_stats.utc_day(aware.replace(tzinfo=None)).isoformat() == "2024-05-01"
    assert history_stats.utc_day(aware.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))).isoformat() \
        == "2024-05-01"


def test_list_totals_read_from_daily_totals_equal_exact_counts(dash: Dashboard) -> None:
    """Folded, then pruned with the cutoff mid-day, plus rows not folded yet: the totals match a real count."""
    from codecshift.services.maintenance import prune_history
    from codecshift.settings_store import set_value

    noon = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    for day in range(6):
        for hour, node in ((-6, "node-a"), (0, "node-b"), (5, "node-a")):
            dash.history(1, finished_at=noon - timedelta(days=day, hours=hour), node=node,
                         encoder="libx265" if day % 2 else "hevc_nvenc", library_id=None)
    with session_scope(dash.engine) as session:
        history_stats.refresh(session)  # day 4 is folded whole, then pruned in part
        set_value(session, "history_retention_days", 4)
        session.flush()
        assert prune_history(session, now=noon + timedelta(hours=1)) > 0  # cuts day 4 in the middle
    dash.history(2, finished_at=noon, node="node-a")  # pending
    with session_scope(dash.engine) as session:
        def exact(**where: object) -> int:
            stmt = select(History.id)
            for name, value in where.items():
                stmt = stmt.where(getattr(History, name) == value)
            return len(session.scalars(stmt).all())

        today = noon.date()
        cases = [({}, exact()), ({"node": "node-a"}, exact(node="node-a")),
                 ({"encoder": "libx265"}, exact(encoder="libx265"))]
        for query, expected in cases:
            assert dash.api("GET", "/api/history", query_string=query).get_json()["total"] == expected, query
        since = (today - timedelta(days=2)).isoformat()
        ranged = dash.api("GET", f"/api/history?since={since}&node=node-b").get_json()
        assert ranged["total"] == len(ranged["items"]) == 3
        until = (today - timedelta(days=3)).isoformat()
        old = dash.api("GET", f"/api/history?until={until}").get_json()
        assert old["total"] == len(old["items"]) and old["total"] > 0
        both = dash.api("GET", "/api/history?node=node-a&encoder=libx265").get_json()
        assert both["total"] == len(both["items"])


def test_dates_outside_1970_to_tomorrow_are_refused_naming_the_field(dash: Dashboard) -> None:
    _seed(dash)
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    for url, field in (("/api/history?until=9999-12-31", "until"), ("/api/history?since=0001-01-01", "since"),
                       ("/api/history/stats?until=9999-12-31", "until"),
                       ("/api/history/stats?since=0001-01-01&bucket=month", "since"),
                       ("/api/history/stats?since=1969-12-31", "since")):
        response = dash.api("GET", url)
        assert response.status_code == 400, url
        assert error_of(response)["field"] == field and "1970-01-01" in error_of(response)["message"]
    edge = dash.api("GET", f"/api/history/stats?since=1970-01-01&until={tomorrow}&bucket=month")
    assert edge.status_code == 200
    assert dash.api("GET", f"/api/history?since=1970-01-01&until={tomorrow}").get_json()["total"] == 4
    longest = dash.api("GET", "/api/history/stats?days=36500").get_json()
    assert longest["range"]["since"] == "1970-01-01" and longest["totals"]["files"] == 4


def test_a_series_never_has_more_than_a_thousand_buckets(dash: Dashboard) -> None:
    dash.history(1, finished_at=datetime(1971, 3, 1, 12, tzinfo=UTC))
    dash.history(1, finished_at=utcnow())
    for query, bucket in (("bucket=day", "month"), ("bucket=week", "month"),
                          ("days=5000&bucket=day", "week"), ("days=900&bucket=day", "day")):
        body = dash.api("GET", f"/api/history/stats?{query}").get_json()
        assert body["range"]["bucket"] == bucket, (query, body["range"])
        assert len(body["series"]) <= 1000
        assert body["series"][-1]["cumulative_saved_bytes"] == 1200
    day_by_day = dash.api("GET", "/api/history/stats?days=900&bucket=day").get_json()["series"]
    assert len(day_by_day) == 900


def test_nul_in_a_history_query_is_a_400_naming_the_field(dash: Dashboard) -> None:
    for url, field in (("/api/history?q=a%00b", "q"), ("/api/history?node=%00", "node"),
                       ("/api/history/stats?bucket=day%00", "bucket")):
        response = dash.api("GET", url)
        assert response.status_code == 400, url
        assert error_of(response)["field"] == field
