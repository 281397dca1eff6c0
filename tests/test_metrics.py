"""Prometheus metrics from the database, on SQLite and PostgreSQL, parsed with prometheus_client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from codecshift.db import init_schema, make_engine, session_scope
from codecshift.metrics import effective_node_status, render_metrics
from codecshift.models import History, Job, Library, Node
from codecshift.settings_store import set_value
from codecshift.version import read_version


def _samples(page: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    result = {}
    for family in text_string_to_metric_families(page.decode("utf-8")):
        for sample in family.samples:
            result[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return result


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    init_schema(engine)
    yield engine
    engine.dispose()


def _job(library_id: int, n: int, status: str, queue: str | None, **extra) -> Job:
    return Job(library_id=library_id, path=f"/media/m{n}.mkv", status=status, queue=queue, **extra)


def _populate(engine) -> None:
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        library = Library(name="Movies", roots=["/media"])
        session.add(library)
        session.flush()
        lid = library.id
        session.add_all([
            _job(lid, 1, "queued", "cpu"), _job(lid, 2, "queued", "cpu"), _job(lid, 3, "queued", "nvenc"),
            _job(lid, 4, "queued", None),
            _job(lid, 5, "running", "nvenc", node="gpu-box", encoder="hevc_nvenc", fps=240.5),
            _job(lid, 6, "running", "nvenc", node="gpu-box", encoder="hevc_nvenc", fps=200.0),
            _job(lid, 7, "running", "cpu", node="gpu-box", encoder="libx265", fps=12.25),
            _job(lid, 8, "running", "cpu", node="old-pc", encoder="libx265", fps=None),
            _job(lid, 9, "done", "cpu"), _job(lid, 10, "failed", "qsv"), _job(lid, 11, "skipped", "cpu"),
        ])
        session.add_all([
            History(library_id=lid, path="/media/a.mkv", target_codec="hevc", size_before=1000,
                    size_after=400),
            History(library_id=lid, path="/media/b.mkv", target_codec="hevc", size_before=5_000_000_000,
                    size_after=2_000_000_000),
        ])
        session.add_all([
            Node(name="gpu-box", hostname="gpu-box", version="0.1.0", status="online",
                 last_heartbeat=now - timedelta(seconds=5)),
            Node(name="old-pc", hostname="old-pc", version="0.1.0", status="online",
                 last_heartbeat=now - timedelta(seconds=30)),
            Node(name="laptop", hostname="laptop", version="0.1.0", status="online",
                 last_heartbeat=now - timedelta(hours=2)),
            Node(name="nas", hostname="nas", version="0.1.0", status="stopped",
                 last_heartbeat=now - timedelta(days=1)),
            Node(name="rack", hostname="rack", version="0.1.0", status="draining",
                 last_heartbeat=now - timedelta(seconds=2)),
        ])


def test_metrics_report_jobs_bytes_fps_queues_and_nodes(engine) -> None:
    _populate(engine)
    page, content_type = render_metrics(engine)
    assert content_type.startswith("text/plain")
    samples = _samples(page)

    assert _value(samples, "codecshift_database_up") == 1
    assert _value(samples, "codecshift_build_info", version=read_version()) == 1
    # jobs by status and queue, zeros present for the known queues
    assert _value(samples, "codecshift_jobs", status="queued", queue="cpu") == 2
    assert _value(samples, "codecshift_jobs", status="queued", queue="none") == 1
    assert _value(samples, "codecshift_jobs", status="running", queue="nvenc") == 2
    assert _value(samples, "codecshift_jobs", status="failed", queue="qsv") == 1
    assert _value(samples, "codecshift_jobs", status="replacing", queue="vaapi") == 0
    total = sum(v for (name, _), v in samples.items() if name == "codecshift_jobs")
    assert total == 11
    # queue depth: queued jobs per queue
    assert _value(samples, "codecshift_queue_depth", queue="cpu") == 2
    assert _value(samples, "codecshift_queue_depth", queue="nvenc") == 1
    assert _value(samples, "codecshift_queue_depth", queue="qsv") == 0
    assert _value(samples, "codecshift_queue_depth", queue="none") == 1
    # bytes saved over the history
    assert _value(samples, "codecshift_bytes_saved") == 600 + 3_000_000_000
    assert _value(samples, "codecshift_bytes_processed") == 1000 + 5_000_000_000
    assert _value(samples, "codecshift_transcodes_finished") == 2
    # fps of running jobs, summed per node and encoder; a job without fps yet counts as 0
    assert _value(samples, "codecshift_encode_fps", node="gpu-box", encoder="hevc_nvenc") == 440.5
    assert _value(samples, "codecshift_encode_fps", node="gpu-box", encoder="libx265") == 12.25
    assert _value(samples, "codecshift_encode_fps", node="old-pc", encoder="libx265") == 0
    assert _value(samples, "codecshift_encoding_jobs", node="gpu-box", encoder="hevc_nvenc") == 2
    # nodes by status: laptop went silent two hours ago, so it shows offline
    assert _value(samples, "codecshift_nodes", status="online") == 2
    # laptop silent, and nas (stopped a day ago) too: the dashboard shows both offline
    assert _value(samples, "codecshift_nodes", status="offline") == 2
    assert _value(samples, "codecshift_nodes", status="stopped") == 0
    assert _value(samples, "codecshift_nodes", status="draining") == 1
    assert _value(samples, "codecshift_node_up", node="rack") == 1
    assert _value(samples, "codecshift_node_up", node="gpu-box") == 1
    assert _value(samples, "codecshift_node_up", node="laptop") == 0
    assert _value(samples, "codecshift_node_last_heartbeat_timestamp_seconds", node="nas") == pytest.approx(
        (datetime.now(UTC) - timedelta(days=1)).timestamp(), abs=120)


def test_offline_threshold_comes_from_the_settings(engine) -> None:
    _populate(engine)
    with session_scope(engine) as session:
        set_value(session, "node_offline_after_seconds", 10)
    samples = _samples(render_metrics(engine)[0])
    # old-pc (30 s silent) is now past the threshold too
    assert _value(samples, "codecshift_nodes", status="online") == 1
    assert _value(samples, "codecshift_nodes", status="offline") == 3
    assert _value(samples, "codecshift_node_up", node="old-pc") == 0


def test_empty_database_gives_zeros_not_gaps(engine) -> None:
    samples = _samples(render_metrics(engine)[0])
    assert _value(samples, "codecshift_queue_depth", queue="cpu") == 0
    assert _value(samples, "codecshift_jobs", status="queued", queue="nvenc") == 0
    assert _value(samples, "codecshift_bytes_saved") == 0
    assert _value(samples, "codecshift_nodes", status="online") == 0
    assert not [key for key in samples if key[0] == "codecshift_encode_fps"]


def test_openmetrics_is_served_when_asked_for(engine) -> None:
    _populate(engine)
    page, content_type = render_metrics(engine, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert page.rstrip().endswith(b"# EOF")
    assert b'codecshift_queue_depth{queue="cpu"} 2' in page


def test_unreachable_database_reports_down_instead_of_failing(postgres_url: str) -> None:
    missing = make_url(postgres_url).set(database="codecshift_no_such_database").render_as_string(
        hide_password=False)
    engine = make_engine(missing)
    try:
        samples = _samples(render_metrics(engine)[0])
    finally:
        engine.dispose()
    assert _value(samples, "codecshift_database_up") == 0
    assert _value(samples, "codecshift_build_info", version=read_version()) == 1
    assert not [key for key in samples if key[0] == "codecshift_jobs"]


def test_effective_node_status_matches_the_dashboard() -> None:
    from codecshift.services.dispatcher import node_is_fresh

    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    cases = [("online", now - timedelta(seconds=59)), ("draining", now - timedelta(seconds=61)),
             ("stopped", now - timedelta(days=3)), ("paused", now), ("online", None)]
    for status, heartbeat in cases:
        fresh = node_is_fresh(Node(name="n", last_heartbeat=heartbeat), now, 60)
        assert effective_node_status(status, heartbeat, now, 60) == (status if fresh else "offline")
    assert effective_node_status("online", None, now, 60) == "offline"


def test_bytes_saved_come_from_the_daily_rollup_and_survive_pruning(engine) -> None:
    from sqlalchemy import delete

    from codecshift.services import history_stats

    _populate(engine)
    with session_scope(engine) as session:
        assert history_stats.refresh(session) == 2  # folded into history_daily
        session.add(History(path="/media/c.mkv", target_codec="hevc", size_before=500, size_after=100,
                            quality_metric="ssim", quality_score=0.9))  # not folded yet
    samples = _samples(render_metrics(engine)[0])
    assert _value(samples, "codecshift_bytes_saved") == 600 + 3_000_000_000 + 400
    assert _value(samples, "codecshift_transcodes_finished") == 3
    with session_scope(engine) as session:  # retention prunes the folded rows
        session.execute(delete(History).where(History.in_rollup.is_(True)))
    samples = _samples(render_metrics(engine)[0])
    assert _value(samples, "codecshift_bytes_saved") == 600 + 3_000_000_000 + 400
    assert _value(samples, "codecshift_bytes_processed") == 1000 + 5_000_000_000 + 500
    assert _value(samples, "codecshift_transcodes_finished") == 3
