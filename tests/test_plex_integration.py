"""Plex libraries on the control worker's code path (the Celery tasks run in this process over a
real database and plexapi talking to the fake Plex server): scans of movie and TV sections
decided from Plex's metadata, missing files, rescans, mappings, the refresh after a replacement
and the files webhooks announce."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, select

from codecshift import settings_store
from codecshift.config import load_settings
from codecshift.db import engine_for, init_schema, session_scope
from codecshift.models import Job, JobEvent, Library, MediaFile, ScanRun
from codecshift.services import jobs as job_service
from codecshift.services import plex_link, scanner
from support.cluster import TEST_SETTINGS
from support.fake_plex import FakePlex, running
from support.plex_library import local_path, mappings, materialize
from tasks import names

ALPHA = "/data/movies/Alpha (2001)/Alpha.mkv"
BRAVO = "/data/movies/Bravo (2002)/Bravo.mp4"


@pytest.fixture
def fake() -> Iterator[FakePlex]:
    yield from running()


@dataclass
class Control:
    """What the control worker has: the database and the Celery app its tasks are bound to."""

    engine: Engine
    app: Celery

    def run(self, task: str, *args: Any, **options: Any) -> Any:
        result = self.app.tasks[task].apply(args=list(args), **options)
        if result.failed():
            raise result.result
        return result

    def scan(self, library_id: int) -> ScanRun:
        with session_scope(self.engine) as session:
            run, created = scanner.start_scan(session, library_id)
            assert created
        self.run(names.SCAN_LIBRARY, run.id)
        with session_scope(self.engine) as session:
            return session.get(ScanRun, run.id)

    def files(self) -> dict[str, MediaFile]:
        with session_scope(self.engine) as session:
            return {m.path: m for m in session.scalars(select(MediaFile))}

    def jobs(self) -> list[Job]:
        with session_scope(self.engine) as session:
            return list(session.scalars(select(Job).order_by(Job.id)))

    def events(self, job_id: int) -> list[JobEvent]:
        with session_scope(self.engine) as session:
            return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))


def _control(database_url: str, tmp_path: Path) -> Control:
    from tasks.app import create_celery

    settings = load_settings({"CODECSHIFT_DATABASE_URL": database_url, "CODECSHIFT_SECRET_KEY": "test",
                              "CODECSHIFT_DATA_DIR": str(tmp_path / "data")})  # filesystem broker
    engine = engine_for(settings.effective_database_url)
    init_schema(engine)
    with session_scope(engine) as session:
        settings_store.set_many(session, TEST_SETTINGS)
    import tasks.control_tasks
    import tasks.plex_tasks  # noqa: F401

    return Control(engine, create_celery(settings))


@pytest.fixture
def control(sqlite_url: str, tmp_path: Path) -> Control:
    return _control(sqlite_url, tmp_path)


@pytest.fixture
def control_any_db(database_url: str, tmp_path: Path) -> Control:
    return _control(database_url, tmp_path)


def linked_library(control: Control, fake: FakePlex, nas: Path, section: str = "1", **extra: str) -> int:
    with session_scope(control.engine) as session:
        plex_link.link_server(session, fake.url, fake.token, timeout=5)
        return plex_link.manage_section(session, section, path_mappings=mappings(nas, **extra)).id


def metadata_requests(fake: FakePlex, since: int = 0) -> list[str]:
    return [path for path in fake.paths_requested()[since:] if path.startswith("/library/metadata")]


def test_movie_section_is_decided_from_plex_without_probing(control_any_db: Control, fake: FakePlex,
                                                            tmp_path: Path) -> None:
    control = control_any_db
    nas = tmp_path / "nas"
    # Random bytes: any probe of these files would fail, so a queued file proves none happened.
    materialize(fake, nas, skip=(BRAVO,))
    library_id = linked_library(control, fake, nas)
    run = control.scan(library_id)
    assert run.status == "done", run.message
    assert (run.total, run.files_seen, run.files_new, run.files_probed) == (5, 7, 7, 0)
    assert run.jobs_created == 4
    files = control.files()
    alpha = files[ALPHA]
    assert alpha.state == "queued" and alpha.probe_error is None
    assert (alpha.video_codec, alpha.container, alpha.width, alpha.height) == ("h264", "matroska", 1920, 1080)
    assert alpha.duration == 60.0 and alpha.bitrate == 4_000_000 and alpha.plex_rating_key == "101"
    assert "h264 1920x1080 (hd) to hevc" in alpha.decision
    # Both parts of a stacked movie, each version of a movie in two versions.
    assert files["/data/movies/Charlie (2003)/Charlie - cd2.avi"].state == "queued"
    assert files["/data/movies/Delta (2004)/Delta 2160p.mkv"].decision == "already hevc, the target codec"
    # The file Plex lists but the control worker cannot find: reported with the mapping, not queued.
    bravo = files[BRAVO]
    assert bravo.state == "missing"
    assert f"{local_path(nas, BRAVO)} (library path {BRAVO}) not found" in bravo.decision
    assert f"mapping /data -> {nas} (library 'Movies') may need fixing" in bravo.decision
    assert "missing" in run.message
    jobs = control.jobs()
    assert sorted(job.path for job in jobs) == sorted(
        [ALPHA, "/data/movies/Charlie (2003)/Charlie - cd1.avi", "/data/movies/Charlie (2003)/Charlie - cd2.avi",
         "/data/movies/Delta (2004)/Delta 1080p.mkv"])
    assert all(job.status == "queued" and job.target_codec == "hevc" for job in jobs)
    assert metadata_requests(fake) == []  # listed in pages, never one request per item

    before = len(fake.paths_requested())
    again = control.scan(library_id)
    assert again.status == "done"
    assert (again.files_seen, again.files_new, again.files_changed, again.files_probed, again.jobs_created) == \
        (7, 0, 0, 0, 0)
    assert len(control.jobs()) == 4
    assert metadata_requests(fake, before) == []
    assert {path: f.updated_at for path, f in control.files().items()} == \
        {path: f.updated_at for path, f in files.items()}  # nothing rewritten, the missing report included


def test_rescan_finds_a_file_that_appeared_and_marks_what_left_plex(control: Control, fake: FakePlex,
                                                                    tmp_path: Path) -> None:
    nas = tmp_path / "nas"
    materialize(fake, nas, skip=(BRAVO,))
    library_id = linked_library(control, fake, nas)
    control.scan(library_id)
    target = local_path(nas, BRAVO)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\0" * 4096)
    next(p for m in fake.sections[0].movies for v in m.media for p in v.parts if p.file == BRAVO).size = 4096
    movies = fake.sections[0].movies
    movies[:] = [movie for movie in movies if movie.title != "Alpha"]  # removed from Plex
    run = control.scan(library_id)
    assert run.status == "done" and run.files_gone == 1 and run.jobs_created == 1
    files = control.files()
    assert files[BRAVO].state == "queued" and files[ALPHA].state == "gone"
    by_path = {job.path: job for job in control.jobs()}
    assert by_path[BRAVO].status == "queued"
    assert by_path[ALPHA].status == "cancelled" and by_path[ALPHA].error == "the file is gone from Plex"


def test_out_of_date_plex_metadata_is_probed_instead(control: Control, fake: FakePlex, tmp_path: Path,
                                                     h264_clip: Path) -> None:
    nas = tmp_path / "nas"
    materialize(fake, nas)
    shutil.copy2(h264_clip, local_path(nas, ALPHA))  # replaced on disk; Plex still reports the old size
    library_id = linked_library(control, fake, nas)
    run = control.scan(library_id)
    assert run.status == "done" and run.files_probed == 1
    alpha = control.files()[ALPHA]
    assert (alpha.width, alpha.height) == (160, 90)  # what the file holds, not what Plex last saw
    assert alpha.state == "queued"


def test_tv_section_yields_every_episode_of_every_show(control: Control, fake: FakePlex, tmp_path: Path) -> None:
    nas = tmp_path / "nas"
    materialize(fake, nas)
    library_id = linked_library(control, fake, nas, section="2")
    run = control.scan(library_id)
    assert run.status == "done" and (run.total, run.files_seen, run.files_probed, run.jobs_created) == (5, 5, 0, 4)
    files = control.files()
    assert sorted(files) == sorted([
        "/data/tv/Show A/Season 01/Show A - S01E01.mkv", "/data/tv/Show A/Season 01/Show A - S01E02.mkv",
        "/data/tv/Show A/Season 02/Show A - S02E01.mkv", "/data/tv/Show B/Season 01/Show B - S01E01.mp4",
        "/data/tv/Show B/Season 01/Show B - S01E02.mp4"])
    assert files["/data/tv/Show A/Season 02/Show A - S02E01.mkv"].state == "skipped"
    with session_scope(control.engine) as session:
        library = session.get(Library, library_id)
        assert (library.kind, library.plex_section_type, library.roots) == ("plex", "show", ["/data/tv", "/data/tv2"])


def test_plex_down_or_unlinked_fails_the_scan_and_marks_nothing_gone(control: Control, fake: FakePlex,
                                                                     tmp_path: Path) -> None:
    nas = tmp_path / "nas"
    materialize(fake, nas)
    library_id = linked_library(control, fake, nas)
    control.scan(library_id)
    fake.down()
    run = control.scan(library_id)
    assert run.status == "failed" and "cannot connect to Plex" in run.message
    assert fake.token not in run.message
    assert {f.state for f in control.files().values()} == {"queued", "skipped"}
    fake.up()
    fake.fail(503, path_prefix="/library/sections/1/all")
    run = control.scan(library_id)
    assert run.status == "failed" and "HTTP 503" in run.message and run.files_gone == 0
    fake.heal()
    with session_scope(control.engine) as session:
        plex_link.unlink(session)
    run = control.scan(library_id)
    assert run.status == "failed" and "no Plex server is linked" in run.message
    assert all(job.status == "queued" for job in control.jobs())


def test_nodes_map_plex_paths_and_name_the_mapping_they_cannot_reach(control: Control, fake: FakePlex,
                                                                    tmp_path: Path) -> None:
    from tasks.node_jobs import local_path as node_local_path
    from tasks.node_jobs import run_transcode
    from tasks.node_runtime import NodeRuntime

    nas = tmp_path / "nas"
    materialize(fake, nas)
    # The control worker and node-a use the default mapping; node-b mounts the share elsewhere.
    library_id = linked_library(control, fake, nas, **{"node-b": "/mnt/elsewhere"})
    control.scan(library_id)
    job = next(job for job in control.jobs() if job.path == ALPHA)
    with session_scope(control.engine) as session:
        spec = job_service.claim_spec(session, session.get(Job, job.id))
    assert spec["job"]["path"] == ALPHA and len(spec["job"]["path_mappings"]) == 2

    def runtime(name: str, **env: str) -> NodeRuntime:
        values = {"CODECSHIFT_DASHBOARD_URL": "http://127.0.0.1:9", "CODECSHIFT_API_KEY": "unused", **env}
        return NodeRuntime(load_settings(values), control.app, name=name, checks=[])

    assert node_local_path(runtime("node-a"), spec["job"]).path == str(local_path(nas, ALPHA))
    failed = run_transcode(runtime("node-b"), spec, "cpu")
    assert failed["status"] == "failed" and failed["stage"] == "source"
    assert failed["reason"] == (f"/mnt/elsewhere/movies/Alpha (2001)/Alpha.mkv (library path {ALPHA}) not found on "
                                f"node node-b; mapping /data -> /mnt/elsewhere (library 'Movies', node node-b) "
                                f"may need fixing")
    own = run_transcode(runtime("node-c", CODECSHIFT_PATH_MAPPINGS="/data=/srv/share"), spec, "cpu")
    assert "mapping /data -> /srv/share (CODECSHIFT_PATH_MAPPINGS on node node-c)" in own["reason"]


def _done_job(control: Control, fake: FakePlex, nas: Path) -> int:
    materialize(fake, nas)
    library_id = linked_library(control, fake, nas)
    control.scan(library_id)
    with session_scope(control.engine) as session:
        job = session.scalar(select(Job).where(Job.path == ALPHA))
        job.status, job.attempt, job.node = "done", 1, "node-a"
        return job.id


def test_refresh_after_a_replacement_asks_plex_for_that_folder_only(control: Control, fake: FakePlex,
                                                                    tmp_path: Path) -> None:
    job_id = _done_job(control, fake, tmp_path / "nas")
    result = control.run(names.PLEX_REFRESH, job_id)
    assert result.result["ok"] is True
    assert fake.refreshes == [("1", "/data/movies/Alpha (2001)")]
    events = control.events(job_id)
    assert [e.event for e in events][-1] == "plex_refreshed"
    assert "/data/movies/Alpha (2001) (section 1)" in events[-1].message


def test_plex_down_during_the_refresh_leaves_the_job_done_and_records_why(
        control: Control, fake: FakePlex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.plex_tasks as plex_tasks

    monkeypatch.setattr(plex_tasks, "REFRESH_BACKOFF", 0.01)
    job_id = _done_job(control, fake, tmp_path / "nas")
    fake.down()
    # Run eagerly, the task's Celery retries run at once: the first try and three more.
    result = control.run(names.PLEX_REFRESH, job_id)
    assert result.state == "SUCCESS" and result.result["ok"] is False
    failures = [e for e in control.events(job_id) if e.event == "plex_refresh_failed"]
    assert len(failures) == 1 + len(plex_tasks.REFRESH_RETRY_COUNTDOWNS)
    assert all("cannot connect to Plex" in e.message and "after 4 tries" in e.message for e in failures)
    assert ["will try again in 60 s" in failures[0].message, "will try again in 300 s" in failures[1].message,
            "will try again in 900 s" in failures[2].message, "no more tries" in failures[3].message] == [True] * 4
    assert all(fake.token not in e.message for e in failures)
    assert next(job for job in control.jobs() if job.id == job_id).status == "done"
    assert fake.refreshes == []


def test_webhook_files_are_queued_from_plex_metadata_or_probed(control: Control, fake: FakePlex,
                                                               tmp_path: Path, h264_clip: Path) -> None:
    nas = tmp_path / "nas"
    materialize(fake, nas)
    library_id = linked_library(control, fake, nas, section="2")
    # Plex's library.new names an episode by rating key: its file comes from Plex's metadata.
    result = control.run(names.PLEX_INGEST, library_id, [], "612", "plex").result
    assert (result["files"], result["decided_from_plex"], result["probed"], result["jobs"]) == (1, 1, 0, 1)
    assert [job.path for job in control.jobs()] == ["/data/tv/Show B/Season 01/Show B - S01E02.mp4"]
    # Sonarr gives only a path (already the library's): the file is probed here.
    new = "/data/tv/Show C/Season 01/Show C - S01E01.mkv"
    local_path(nas, new).parent.mkdir(parents=True)
    shutil.copy2(h264_clip, local_path(nas, new))
    result = control.run(names.PLEX_INGEST, library_id, [new], None, "sonarr").result
    assert (result["probed"], result["jobs"]) == (1, 1)
    assert control.files()[new].state == "queued"
    # The same announcement again changes nothing.
    assert control.run(names.PLEX_INGEST, library_id, [new], None, "sonarr").result["jobs"] == 0
    # Plex has not listed it yet while it is on disk: a scan keeps it.
    run = control.scan(library_id)
    assert run.status == "done" and run.files_gone == 0 and control.files()[new].state == "queued"
    # A whole show announced at once: its other episodes become known, none twice.
    result = control.run(names.PLEX_INGEST, library_id, [], "500", "plex").result
    assert result["files"] == 3 and result["jobs"] == 0


def test_a_cancelled_plex_scan_stops_and_keeps_what_it_wrote(control: Control, fake: FakePlex,
                                                             tmp_path: Path) -> None:
    nas = tmp_path / "nas"
    materialize(fake, nas)
    library_id = linked_library(control, fake, nas)
    with session_scope(control.engine) as session:
        run, _ = scanner.start_scan(session, library_id)
        assert scanner.cancel_scan(session, run.id)
    control.run(names.SCAN_LIBRARY, run.id)
    with session_scope(control.engine) as session:
        run = session.get(ScanRun, run.id)
    assert run.status == "cancelled" and run.files_gone == 0
    assert control.scan(library_id).status == "done"  # the lock is free again
