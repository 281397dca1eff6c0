"""Library scans: new, changed, deleted and unchanged files; one scan at a time."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from codecshift import settings_store
from codecshift.db import init_schema, make_engine, session_scope
from codecshift.models import Job, Library, MediaFile, ScanRun
from codecshift.services import scanner
from support.cluster import TEST_SETTINGS
from support.media import make_clip


def _setup(database_url: str, root: Path, profile: dict | None = None):
    engine = make_engine(database_url)
    init_schema(engine)
    with session_scope(engine) as session:
        settings_store.set_many(session, TEST_SETTINGS)
        library = Library(name="Movies", roots=[str(root)], profile=profile or {})
        session.add(library)
        session.flush()
        library_id = library.id
    return engine, library_id


class CountingProber:
    """The real prober, counting calls, to prove unchanged files are not probed."""

    def __init__(self) -> None:
        from codecshift.media.probe import probe

        self.probe = probe
        self.calls: list[str] = []

    def __call__(self, path: str):
        self.calls.append(path)
        return self.probe(path)


def _scan(engine, library_id: int, prober: CountingProber | None = None) -> scanner.ScanCounters:
    with session_scope(engine) as session:
        run, created = scanner.start_scan(session, library_id)
        assert created
    kwargs = {"prober": prober} if prober else {}
    return scanner.Scanner(engine, run.id, **kwargs).run()


def _files(engine) -> dict[str, MediaFile]:
    with session_scope(engine) as session:
        return {Path(m.path).name: m for m in session.scalars(select(MediaFile))}


def test_new_changed_deleted_and_unchanged(database_url: str, media_dir: Path, h264_clip: Path) -> None:
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        shutil.copy2(h264_clip, media_dir / name)
    (media_dir / "notes.txt").write_text("not media")
    (media_dir / ".codecshift-job1-a1.out.a.mkv").write_bytes(b"leftover")
    engine, library_id = _setup(database_url, media_dir)
    prober = CountingProber()

    first = _scan(engine, library_id, prober)
    assert (first.seen, first.new, first.probed, first.jobs) == (3, 3, 3, 3)
    files = _files(engine)
    assert set(files) == {"a.mkv", "b.mkv", "c.mkv"}
    assert files["a.mkv"].video_codec == "h264" and files["a.mkv"].width == 160
    assert all(f.state == "queued" for f in files.values())

    prober.calls.clear()
    unchanged = _scan(engine, library_id, prober)
    assert prober.calls == []
    assert (unchanged.seen, unchanged.new, unchanged.changed, unchanged.gone, unchanged.jobs) == (3, 0, 0, 0, 0)

    make_clip(media_dir / "b.mkv", duration=1.5)  # changed content, size and mtime
    os.remove(media_dir / "c.mkv")
    shutil.copy2(h264_clip, media_dir / "d.mkv")
    third = _scan(engine, library_id, prober)
    assert sorted(Path(p).name for p in prober.calls) == ["b.mkv", "d.mkv"]
    assert (third.new, third.changed, third.gone) == (1, 1, 1)
    files = _files(engine)
    assert files["c.mkv"].state == "gone"
    assert files["b.mkv"].duration > 1.2
    with session_scope(engine) as session:
        jobs = list(session.scalars(select(Job)))
        by_file = {Path(j.path).name: j for j in jobs}
        # b already had a live (queued) job: no second one; c's queued job is cancelled
        assert len([j for j in jobs if Path(j.path).name == "b.mkv"]) == 1
        assert by_file["c.mkv"].status == "cancelled"
        assert by_file["d.mkv"].status == "queued"
    engine.dispose()


def test_unreadable_and_already_done_files_are_recorded_not_queued(sqlite_url: str, media_dir: Path,
                                                                    h264_clip: Path) -> None:
    (media_dir / "broken.mkv").write_text("this is not a video")
    (media_dir / "empty.mp4").write_bytes(b"")
    make_clip(media_dir / "done.mkv", vcodec="libx265", extra_video_args=("-preset", "ultrafast"))
    engine, library_id = _setup(sqlite_url, media_dir)
    counters = _scan(engine, library_id)
    files = _files(engine)
    assert files["broken.mkv"].state == "error" and files["broken.mkv"].probe_error
    assert files["empty.mp4"].state == "error"
    assert files["done.mkv"].state == "skipped" and "hevc" in files["done.mkv"].decision
    assert counters.jobs == 0


def test_symlink_waits_for_approval(sqlite_url: str, media_dir: Path, h264_clip: Path) -> None:
    elsewhere = media_dir.parent / "elsewhere"
    elsewhere.mkdir()
    shutil.copy2(h264_clip, elsewhere / "real.mkv")
    os.symlink(elsewhere / "real.mkv", media_dir / "link.mkv")
    engine, library_id = _setup(sqlite_url, media_dir)
    _scan(engine, library_id)
    with session_scope(engine) as session:
        job = session.scalar(select(Job))
        assert job.status == "awaiting_approval"
        assert "symlink" in job.reason.lower()


def test_two_scan_requests_at_once_run_one_scan(database_url: str, media_dir: Path, h264_clip: Path) -> None:
    shutil.copy2(h264_clip, media_dir / "a.mkv")
    engine, library_id = _setup(database_url, media_dir)
    results: list[tuple[int, bool]] = []
    barrier = threading.Barrier(4)

    def request_scan() -> None:
        barrier.wait()
        with session_scope(engine) as session:
            run, created = scanner.start_scan(session, library_id)
            results.append((run.id, created))

    threads = [threading.Thread(target=request_scan) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({scan_id for scan_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with session_scope(engine) as session:
        assert len(session.scalars(select(ScanRun)).all()) == 1
    engine.dispose()


def test_cancelled_scan_stops_and_unmounted_root_marks_nothing_gone(sqlite_url: str, media_dir: Path,
                                                                     h264_clip: Path) -> None:
    shutil.copy2(h264_clip, media_dir / "a.mkv")
    engine, library_id = _setup(sqlite_url, media_dir)
    _scan(engine, library_id)
    shutil.rmtree(media_dir)  # the share is gone (unmounted), not the files
    counters = _scan(engine, library_id)
    assert counters.gone == 0
    with session_scope(engine) as session:
        run = session.scalars(select(ScanRun).order_by(ScanRun.id.desc())).first()
        assert run.status == "failed" and "not a readable folder" in run.message
        assert session.scalar(select(MediaFile)).state == "queued"

    media_dir.mkdir()
    for index in range(3):
        shutil.copy2(h264_clip, media_dir / f"n{index}.mkv")
    with session_scope(engine) as session:
        run, _ = scanner.start_scan(session, library_id)
        assert scanner.cancel_scan(session, run.id)
        assert session.get(ScanRun, run.id).status == "cancelled", "a scan no worker started ends at once"
    with pytest.raises(scanner.ScanError, match="not queued"):  # its late message finds nothing to do
        scanner.Scanner(engine, run.id).run()


def test_path_mappings_let_the_control_worker_see_library_paths(sqlite_url: str, media_dir: Path,
                                                                 h264_clip: Path) -> None:
    shutil.copy2(h264_clip, media_dir / "a.mkv")
    engine = make_engine(sqlite_url)
    init_schema(engine)
    with session_scope(engine) as session:
        settings_store.set_many(session, TEST_SETTINGS)
        library = Library(name="Plexish", roots=["/data/movies"],
                          path_mappings=[{"from": "/data/movies", "to": str(media_dir), "node": None}])
        session.add(library)
        session.flush()
        library_id = library.id
    _scan(engine, library_id)
    assert [m.path for m in _files(engine).values()] == ["/data/movies/a.mkv"]


def test_a_queued_file_replaced_by_an_hevc_release_is_not_converted(sqlite_url: str, media_dir: Path,
                                                                     h264_clip: Path) -> None:
    shutil.copy2(h264_clip, media_dir / "a.mkv")
    engine, library_id = _setup(sqlite_url, media_dir)
    _scan(engine, library_id)
    make_clip(media_dir / "a.mkv", vcodec="libx265", extra_video_args=("-preset", "ultrafast"))
    _scan(engine, library_id)
    with session_scope(engine) as session:
        job = session.scalar(select(Job))
        assert job.status == "cancelled" and "no longer worth converting" in job.error
        assert session.scalar(select(MediaFile)).state == "skipped"


def test_kept_originals_in_a_backup_folder_inside_the_library_are_not_scanned(sqlite_url: str, media_dir: Path,
                                                                              h264_clip: Path) -> None:
    shutil.copy2(h264_clip, media_dir / "a.mkv")
    backup = media_dir / "originals"
    backup.mkdir()
    shutil.copy2(h264_clip, backup / "kept.mkv")
    engine, library_id = _setup(sqlite_url, media_dir, profile={"backup_folder": str(backup)})
    counters = _scan(engine, library_id)
    assert counters.seen == 1 and set(_files(engine)) == {"a.mkv"}
