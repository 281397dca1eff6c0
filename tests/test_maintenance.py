"""Beat's housekeeping on both databases: stale jobs, journals, temporary files, history, rescans."""

from __future__ import annotations

import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from codecshift import settings_store
from codecshift.db import init_schema, make_engine, session_scope
from codecshift.media import tempfiles
from codecshift.media.pipeline import Hooks, TranscodeRequest, transcode_file
from codecshift.models import History, Job, JobEvent, Library, Node, ScanRun, utcnow
from codecshift.services import maintenance, nodes, scanner
from support.cluster import TEST_SETTINGS


def _engine(url: str):
    engine = make_engine(url)
    init_schema(engine)
    with session_scope(engine) as session:
        settings_store.set_many(session, {**TEST_SETTINGS, "max_attempts": 2})
    return engine


def _running_job(session, node: str, attempt: int, *, silent_for: float, status: str = "running") -> Job:
    job = Job(path="/x/a.mkv", status=status, node=node, attempt=attempt, queue="cpu",
              heartbeat_at=utcnow() - timedelta(seconds=silent_for), started_at=utcnow())
    session.add(job)
    session.flush()
    return job


def test_stale_jobs_are_requeued_then_failed_after_max_attempts(database_url: str) -> None:
    engine = _engine(database_url)
    with session_scope(engine) as session:
        session.add(Node(name="dead", hostname="h", version="v", status="online",
                         last_heartbeat=utcnow() - timedelta(minutes=5)))
        session.add(Node(name="alive", hostname="h", version="v", status="online", last_heartbeat=utcnow()))
        first = _running_job(session, "dead", 1, silent_for=300)
        last = _running_job(session, "dead", 2, silent_for=300)
        fine = _running_job(session, "alive", 1, silent_for=0)
        replacing = _running_job(session, "dead", 1, silent_for=300, status="replacing")
        replacing.journal = {"tag": tempfiles.job_tag(replacing.id, 1), "step": "hold_original"}
        early = _running_job(session, "dead", 1, silent_for=300, status="replacing")  # died before its journal
        cancelled = _running_job(session, "dead", 1, silent_for=300)
        cancelled.cancel_requested = True
        ids = (first.id, last.id, fine.id, replacing.id, early.id, cancelled.id)
    with session_scope(engine) as session:
        report = nodes.reap_stale(session)
    assert report.offline == ["dead"]
    assert sorted(report.requeued) == sorted([ids[0], ids[4]]) and report.failed == [ids[1]]
    assert report.replacing == [ids[3]] and report.cancelled == [ids[5]]
    with session_scope(engine) as session:
        requeued, failed, fine, replacing, early, cancelled = (session.get(Job, i) for i in ids)
        assert requeued.status == "queued" and requeued.published_at is None and "went silent" in requeued.error
        assert failed.status == "failed" and "gave up after 2 attempts" in failed.error
        assert fine.status == "running"
        assert replacing.status == "replacing", "a replacement with its journal is never requeued blindly"
        assert early.status == "queued" and early.journal is None
        assert cancelled.status == "cancelled", "a user's cancel outlives the node"
        assert session.scalar(select(func.count()).select_from(JobEvent).where(JobEvent.event == "reaped")) == 4
    engine.dispose()


def test_a_node_that_answers_through_the_broker_keeps_its_jobs(sqlite_url: str) -> None:
    """The dashboard was down, not the node: heartbeats stopped, the Celery ping answers."""
    engine = _engine(sqlite_url)
    with session_scope(engine) as session:
        session.add(Node(name="busy", hostname="h", version="v", status="online",
                         last_heartbeat=utcnow() - timedelta(minutes=5)))
        job_id = _running_job(session, "busy", 1, silent_for=300).id
    with session_scope(engine) as session:
        assert nodes.stale_nodes(session) == ["busy"]
        report = nodes.reap_stale(session, alive={"busy"})
    assert report.offline == [] and report.requeued == []
    with session_scope(engine) as session:
        assert session.get(Job, job_id).status == "running"


def _interrupted_replacement(tmp_path: Path, h264_clip: Path, job_id: int = 1) -> tuple[Path, dict]:
    """Run the real pipeline and stop it right after the first replacement step was journaled."""
    source = tmp_path / "media" / "movie.mkv"
    source.parent.mkdir(parents=True)
    shutil.copy2(h264_clip, source)
    journals: list[dict] = []

    class Crash(Exception):
        pass

    def persist(journal: dict) -> None:
        journals.append(dict(journal))
        raise Crash  # the dashboard did not record the step: it must not be taken

    settings = {**settings_store.registry.defaults(), **TEST_SETTINGS}
    result = transcode_file(TranscodeRequest(source=source, settings=settings, family="cpu", codec="hevc",
                                             tag=tempfiles.job_tag(job_id, 1)), Hooks(persist_journal=persist))
    assert result.status == "failed"
    return source, journals[0]


def test_replacing_journal_of_a_silent_node_is_reconciled(sqlite_url: str, tmp_path: Path, h264_clip: Path) -> None:
    engine = _engine(sqlite_url)
    with session_scope(engine) as session:
        job = _running_job(session, "gone", 1, silent_for=600, status="replacing")
        job_id = job.id
    source, journal = _interrupted_replacement(tmp_path, h264_clip, job_id)
    before = source.read_bytes()
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        job.path = str(source)
        job.journal = journal
    with session_scope(engine) as session:
        outcomes = maintenance.reconcile_journals(session)
    assert outcomes[job_id] in ("rolled_back", "rolled_forward")
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job.status in ("done", "failed") and job.finished_at is not None
    # exactly one playable file at the path, and nothing of ours left beside it
    assert source.exists()
    if outcomes[job_id] == "rolled_back":
        assert source.read_bytes() == before
    assert [p.name for p in source.parent.iterdir() if p.name.startswith(".codecshift-")] == []


def test_cleanup_removes_only_dead_attempts_leftovers(sqlite_url: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "movie.mkv").write_bytes(b"original")
    dead = tempfiles.temp_path_for(media / "movie.mkv", tempfiles.job_tag(1, 1), ".mkv")
    live = tempfiles.temp_path_for(media / "movie.mkv", tempfiles.job_tag(2, 1), ".mkv")
    held = media / tempfiles.artifact_name(tempfiles.job_tag(3, 1), "orig", "other.mkv")
    for path in (dead, live, held):
        path.write_bytes(b"x")
        old = time.time() - 7200
        os.utime(path, (old, old))
    quarantine = media / tempfiles.QUARANTINE_DIR / "job9-a1"
    quarantine.mkdir(parents=True)
    (quarantine / "kept.mkv").write_bytes(b"kept")
    os.utime(quarantine, (time.time() - 30 * 86400,) * 2)
    engine = _engine(sqlite_url)
    with session_scope(engine) as session:
        settings_store.set_many(session, {"cleanup_age_hours": 1, "quarantine_days": 7})
        session.add(Library(name="M", roots=[str(media)]))
        session.add(Job(id=2, path=str(media / "movie.mkv"), status="running", attempt=1))
    with session_scope(engine) as session:
        report = maintenance.cleanup_temp_files(session)
    assert sorted(report.removed) == sorted([str(dead), str(quarantine)])
    assert live.exists(), "a live job's output stays"
    assert held.exists(), "a held original is never deleted, even without its journal"
    assert (media / "movie.mkv").read_bytes() == b"original"


def test_history_retention_and_due_rescans(database_url: str, tmp_path: Path) -> None:
    engine = _engine(database_url)
    now = utcnow()
    with session_scope(engine) as session:
        settings_store.set_value(session, "history_retention_days", 30)
        for days in (1, 29, 31, 400):
            session.add(History(path=f"/x/{days}", target_codec="hevc", size_before=10, size_after=5,
                                finished_at=now - timedelta(days=days)))
        fresh = Library(name="fresh", roots=["/a"], last_scan_at=now - timedelta(minutes=5),
                        rescan_interval_minutes=60)
        due = Library(name="due", roots=["/b"], last_scan_at=now - timedelta(minutes=61), rescan_interval_minutes=60)
        never = Library(name="never", roots=["/c"])
        off = Library(name="off", roots=["/d"], rescan_interval_minutes=0)
        session.add_all([fresh, due, never, off])
    with session_scope(engine) as session:
        assert maintenance.prune_history(session, now) == 2
        assert session.scalar(select(func.count()).select_from(History)) == 2
        started = maintenance.start_due_scans(session, now)
        names = {session.get(Library, session.get(ScanRun, s).library_id).name for s in started}
        assert names == {"due", "never"}
        assert maintenance.start_due_scans(session, now) == [], "a live scan is not started twice"
    engine.dispose()


def test_pruned_history_still_counts_in_space_saved(database_url: str) -> None:
    from codecshift.services import history_stats

    engine = _engine(database_url)
    now = utcnow()
    with session_scope(engine) as session:
        settings_store.set_value(session, "history_retention_days", 30)
        session.add(History(path="/x/old", target_codec="hevc", size_before=1000, size_after=400,
                            finished_at=now - timedelta(days=90)))
        session.add(History(path="/x/new", target_codec="hevc", size_before=100, size_after=60,
                            finished_at=now - timedelta(days=1)))
    with session_scope(engine) as session:
        assert maintenance.prune_history(session, now) == 1
    with history_stats.snapshot(engine) as conn:
        totals = history_stats.all_time_totals(conn)
    assert totals.size_before - totals.size_after == 640
    engine.dispose()


def test_lost_and_dead_background_work_is_resent_or_failed(database_url: str) -> None:
    from codecshift.models import BulkOperation
    from codecshift.services import job_actions, scan_runs

    engine = _engine(database_url)
    old = utcnow() - timedelta(hours=1)
    with session_scope(engine) as session:
        libraries = [Library(name=f"l{i}", roots=["/x"]) for i in range(3)]
        session.add_all(libraries)
        session.flush()
        lost = ScanRun(library_id=libraries[0].id, status="queued", updated_at=old)
        dead = ScanRun(library_id=libraries[1].id, status="running", updated_at=old)
        fresh = ScanRun(library_id=libraries[2].id, status="queued")
        lost_op = BulkOperation(action="requeue", filter={}, status="queued", updated_at=old)
        dead_op = BulkOperation(action="cancel", filter={}, status="running", updated_at=old)
        session.add_all([lost, dead, fresh, lost_op, dead_op])
        session.flush()
        ids = (lost.id, dead.id, fresh.id, lost_op.id, dead_op.id)
    with session_scope(engine) as session:
        assert scan_runs.watch(session) == ([ids[0]], [ids[1]])
        assert job_actions.watch(session) == ([ids[3]], [ids[4]])
        assert scan_runs.watch(session) == ([], []), "resent once a minute at most"
        assert session.get(ScanRun, ids[1]).status == "failed"
        assert "died" in session.get(ScanRun, ids[1]).message
        assert session.get(BulkOperation, ids[4]).status == "failed"
        _run, created = scanner.start_scan(session, libraries[1].id)
        assert created, "a library whose scan died can be scanned again"
    engine.dispose()
