"""The cluster end to end with real processes: PostgreSQL, Redis, Celery workers, ffmpeg."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

from codecshift.db import session_scope
from codecshift.media.probe import probe
from codecshift.models import History, Job, JobEvent
from codecshift.services.maintenance import cleanup_temp_files
from support.cluster import Cluster, free_port, running_cluster, wait_for
from support.media import make_clip
from support.receiver import Receiver
from support.services import fresh_postgres_database

pytestmark = pytest.mark.slow

FAST = {"dispatch_interval_seconds": 1, "cleanup_age_hours": 0}


@pytest.fixture
def pg() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _events(cluster: Cluster, job_id: int) -> list[JobEvent]:
    with session_scope(cluster.engine) as session:
        return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))


def _claims(cluster: Cluster, job_id: int) -> list[str]:
    return [e.message.removeprefix("claimed by ") for e in _events(cluster, job_id) if e.event == "claimed"]


def _artifacts(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".codecshift-")]


def _assert_single_hevc_output(folder: Path, names: list[str]) -> None:
    for name in names:
        info = probe(folder / name)
        assert info.main_video.codec == "hevc", name
    assert _artifacts(folder) == []


def test_jobs_land_on_capable_nodes_and_failed_hardware_falls_back_to_cpu(tmp_path: Path, pg: str,
                                                                         h264_clip: Path) -> None:
    gpu_dir, cpu_dir = tmp_path / "gpu-lib", tmp_path / "cpu-lib"
    for folder in (gpu_dir, cpu_dir):
        folder.mkdir()
        for index in range(2):
            shutil.copy2(h264_clip, folder / f"{folder.name}-{index}.mkv")
    with running_cluster(tmp_path, pg, settings=FAST) as cluster:
        cluster.start_control()
        cluster.start_beat()
        # "gpu" claims NVENC (forced): this machine has no NVIDIA GPU, so its encodes really fail.
        cluster.start_worker("gpu", encoders="hevc_nvenc")
        cluster.start_worker("cpu", encoders="libx265")
        gpu_lib = cluster.add_library(gpu_dir, "GPU", profile={"hardware_preference": "nvenc"})
        cpu_lib = cluster.add_library(cpu_dir, "CPU", profile={"hardware_preference": "cpu"})
        cluster.scan(gpu_lib)
        cluster.scan(cpu_lib)
        jobs = cluster.wait_jobs(lambda js: len(js) == 4 and all(j.status == "done" for j in js), 180,
                                 "all jobs done")
        for job in jobs:
            claims = _claims(cluster, job.id)
            if job.library_id == gpu_lib:
                assert claims == ["gpu", "cpu"], claims  # nvenc first, re-routed once to cpu
                assert job.cpu_fallback and job.queue == "cpu"
            else:
                assert claims == ["cpu"], claims
        _assert_single_hevc_output(gpu_dir, ["gpu-lib-0.mkv", "gpu-lib-1.mkv"])
        _assert_single_hevc_output(cpu_dir, ["cpu-lib-0.mkv", "cpu-lib-1.mkv"])
        with session_scope(cluster.engine) as session:
            assert session.scalar(select(func.count()).select_from(History)) == 4
            assert session.scalar(select(func.sum(History.size_before - History.size_after))) > 0


def _slow_clip(folder: Path, name: str = "slow.mkv") -> Path:
    return make_clip(folder / name, duration=4, size="640x360")


SLOW_PROFILE = {"preset_cpu_hevc": "slow"}


def test_sigkilled_worker_job_runs_again_elsewhere(tmp_path: Path, pg: str) -> None:
    media = tmp_path / "media"
    source = _slow_clip(media)
    digest = _sha(source)
    with running_cluster(tmp_path, pg, settings=FAST) as cluster:
        cluster.start_control()
        cluster.start_beat()
        first = cluster.start_worker("first")
        library = cluster.add_library(media, profile=SLOW_PROFILE)
        cluster.scan(library)
        cluster.wait_jobs(lambda js: js[0].status == "running" and js[0].progress > 0, 60, "encode started")
        assert _sha(source) == digest
        ffmpeg = [p for p in psutil.Process(first.pid).children(recursive=True) if p.name() == "ffmpeg"]
        assert ffmpeg, "the encode runs in an ffmpeg child"
        first.kill()  # SIGKILL the worker alone: its ffmpeg must die with it
        first.wait()
        first.expected_exit = True  # type: ignore[attr-defined]
        psutil.wait_procs(ffmpeg, timeout=10)
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ffmpeg)
        assert _sha(source) == digest, "the source is untouched until the verified swap"
        cluster.start_worker("second")
        jobs = cluster.wait_jobs(lambda js: js[0].status == "done", 180, "job done on the second worker")
        assert _claims(cluster, jobs[0].id) == ["first", "second"]
        assert jobs[0].attempt == 2
        with session_scope(cluster.engine) as session:
            report = cleanup_temp_files(session)
        touched = report.removed + report.recovered
        assert touched and all("job1-a1" in p for p in touched), report
        _assert_single_hevc_output(media, ["slow.mkv"])


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(tmp_path)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        import redis

        wait_for(lambda: _ping(redis.Redis(port=port)), 10, message="redis up")

    start()
    yield port, procs, start  # type: ignore[misc]
    for proc in procs:
        proc.kill()
        proc.wait()


def _ping(client: object) -> bool:
    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except Exception:
        return False


def test_broker_restarted_empty_loses_nothing_and_runs_nothing_twice(tmp_path: Path, pg: str, own_redis,
                                                                      h264_clip: Path) -> None:
    port, procs, start_redis = own_redis
    media = tmp_path / "media"
    media.mkdir()
    _slow_clip(media, "a.mkv")
    for index in range(3):
        shutil.copy2(h264_clip, media / f"b{index}.mkv")
    with running_cluster(tmp_path, pg, broker_url=f"redis://127.0.0.1:{port}/0", settings=FAST) as cluster:
        cluster.start_control()
        cluster.start_beat()
        cluster.start_worker("only")
        library = cluster.add_library(media, profile=SLOW_PROFILE)
        cluster.scan(library)
        cluster.wait_jobs(lambda js: any(j.status == "running" for j in js), 60, "an encode running")
        procs[-1].kill()  # Redis dies and comes back empty
        procs[-1].wait()
        start_redis()
        jobs = cluster.wait_jobs(lambda js: len(js) == 4 and all(j.status == "done" for j in js), 240,
                                 "every job done after the broker restart")
        with session_scope(cluster.engine) as session:
            assert session.scalar(select(func.count()).select_from(History)) == 4
        for job in jobs:
            finished = [e for e in _events(cluster, job.id) if e.event.startswith("finished")]
            assert len(finished) == 1, (job.id, [e.event for e in _events(cluster, job.id)])
        _assert_single_hevc_output(media, ["a.mkv", "b0.mkv", "b1.mkv", "b2.mkv"])


def test_same_message_twice_is_done_once(tmp_path: Path, pg: str, h264_clip: Path) -> None:
    from tasks.app import create_celery
    from tasks.publisher import CeleryPublisher

    media = tmp_path / "media"
    media.mkdir()
    shutil.copy2(h264_clip, media / "a.mkv")
    with running_cluster(tmp_path, pg, settings={**FAST, "queue_paused": True}) as cluster:
        cluster.start_control()
        cluster.start_worker("only")
        library = cluster.add_library(media)
        cluster.scan(library)
        job = cluster.wait_jobs(lambda js: js[0].status == "queued", 30, "job queued")[0]
        cluster.set_settings({"queue_paused": False})
        publisher = CeleryPublisher(create_celery(cluster.settings))
        publisher.publish_jobs([(job.id, 0, "transcode", "cpu"), (job.id, 0, "transcode", "cpu")])
        cluster.wait_jobs(lambda js: js[0].status == "done", 120, "job done")
        time.sleep(2)  # let the duplicate be delivered and refused
        with session_scope(cluster.engine) as session:
            assert session.scalar(select(func.count()).select_from(History)) == 1
        assert _claims(cluster, job.id) == ["only"]
        log = (cluster.log_dir / "worker-only.log").read_text()
        assert "not claimable" in log
        _assert_single_hevc_output(media, ["a.mkv"])


def _node(cluster: Cluster, name: str) -> dict:
    return cluster.api("GET", f"/api/nodes/{name}").json()


def _control(cluster: Cluster, name: str, action: str) -> None:
    response = cluster.api("POST", f"/api/nodes/{name}/control", json={"action": action})
    assert response.status_code == 202, response.text


def test_pause_resume_drain_cancel_and_quit(tmp_path: Path, pg: str) -> None:
    media = tmp_path / "media"
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        _slow_clip(media, name)
    digest_b = _sha(media / "b.mkv")
    with running_cluster(tmp_path, pg, settings=FAST) as cluster:
        cluster.start_control()
        cluster.start_beat()
        worker = cluster.start_worker("node1")
        _control(cluster, "node1", "pause")
        assert _node(cluster, "node1")["status"] == "paused"
        library = cluster.add_library(media, profile=SLOW_PROFILE)
        cluster.scan(library)
        time.sleep(4)
        assert all(j.status == "queued" for j in cluster.jobs()), "a paused node takes nothing"

        _control(cluster, "node1", "resume")
        running = cluster.wait_jobs(lambda js: any(j.status == "running" and j.progress > 0 for j in js), 60,
                                    "resumed node encoding")
        current = next(j for j in running if j.status == "running")

        # cancel the running encode: ffmpeg stops, no temporary file, the source stays
        response = cluster.api("POST", f"/api/jobs/{current.id}/cancel")
        assert response.status_code == 200 and response.json()["changed"] == [current.id]
        cluster.wait_jobs(lambda js: next(j for j in js if j.id == current.id).status == "cancelled", 60,
                          "job cancelled")
        tag = f"job{current.id}-a{current.attempt}"
        assert [p for p in _artifacts(media) if tag in p.name] == []
        assert probe(Path(current.path)).main_video.codec == "h264"

        # drain: the node finishes what it runs, then pauses
        cluster.wait_jobs(lambda js: any(j.status == "running" and j.progress > 0 for j in js), 60, "next encode")
        _control(cluster, "node1", "drain")
        assert _node(cluster, "node1")["status"] == "draining"
        wait_for(lambda: _node(cluster, "node1")["status"] == "paused", 90, message="drained to paused")
        jobs = cluster.jobs()
        assert sum(j.status == "done" for j in jobs) == 1
        assert sum(j.status == "queued" for j in jobs) == 1
        waiting = next(j for j in jobs if j.status == "queued")
        if Path(waiting.path).name == "b.mkv":
            assert _sha(media / "b.mkv") == digest_b

        # quit: a warm shutdown; the worker process exits by itself
        _control(cluster, "node1", "quit")
        worker.wait(timeout=60)
        worker.expected_exit = True  # type: ignore[attr-defined]
        assert worker.returncode == 0
        wait_for(lambda: _node(cluster, "node1")["status"] == "offline", 30, message="node offline after quit")


def test_embedded_mode_converts_a_generated_library(tmp_path: Path, h264_clip: Path) -> None:
    import requests

    data = tmp_path / "data"
    media = tmp_path / "library"
    media.mkdir()
    for index in range(2):
        shutil.copy2(h264_clip, media / f"clip {index}.mkv")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODECSHIFT_")}
    env.update({"CODECSHIFT_DATA_DIR": str(data), "CODECSHIFT_WEB_PORT": str(port)})
    cli = [sys.executable, "-m", "codecshift.cli.main"]
    subprocess.run([*cli, "db", "init"], env=env, check=True, capture_output=True)
    from codecshift import settings_store
    from codecshift.db import make_engine

    engine = make_engine(f"sqlite:///{data / 'codecshift.db'}")
    with session_scope(engine) as session:
        settings_store.set_many(session, {"min_file_size_mb": 0, "min_duration_seconds": 0,
                                          "min_bits_per_pixel": 0.0, "preset_cpu_hevc": "ultrafast"})
    key = subprocess.run([*cli, "apikey", "create", "test", "--role", "admin", "-q"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    up = subprocess.Popen([*cli, "up", "--library", str(media)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def history() -> dict | None:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/api/jobs?status=done",
                                      headers={"X-API-Key": key}, timeout=5).json()
            except (requests.RequestException, ValueError):
                return None
            return answer if answer.get("total") == 2 else None

        wait_for(history, 180, interval=1, message="embedded mode converted the library")
        with session_scope(engine) as session:
            saved = session.scalar(select(func.sum(History.size_before - History.size_after)))
        assert saved and saved > 0
        for index in range(2):
            assert probe(media / f"clip {index}.mkv").main_video.codec == "hevc"
    finally:
        os.killpg(up.pid, signal.SIGINT)
        output = up.communicate(timeout=60)[0].decode(errors="replace")
    assert f"http://127.0.0.1:{port}/" in output
    assert "Stopping" in output
    engine.dispose()


def test_health_check_marks_corrupt_files_and_unreachable_paths_name_the_mapping(tmp_path: Path, pg: str,
                                                                                   h264_clip: Path,
                                                                                   receiver: Receiver) -> None:
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy2(h264_clip, media / "good.mkv")
    damaged = media / "damaged.mkv"
    data = bytearray(h264_clip.read_bytes())
    for offset in range(len(data) // 3, len(data) * 2 // 3, 97):
        data[offset] ^= 0xFF  # flip bytes through the middle: the header still probes
    damaged.write_bytes(bytes(data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy2(h264_clip, elsewhere / "far.mkv")
    with running_cluster(tmp_path, pg, settings=FAST) as cluster:
        cluster.start_control()
        cluster.start_beat()
        cluster.start_worker("w1")
        checked = cluster.add_library(media, "Checked", profile={"done_codecs": ["h264", "hevc"]})
        cluster.scan(checked)
        response = cluster.api("POST", f"/api/libraries/{checked}/healthcheck")
        assert response.status_code == 202 and response.json()["jobs_created"] == 2
        cluster.wait_jobs(lambda js: all(j.status == "done" for j in js if j.kind == "healthcheck"), 120,
                          "health checks done")
        files = cluster.api("GET", f"/api/libraries/{checked}/files?health=corrupt").json()["items"]
        assert [Path(f["path"]).name for f in files] == ["damaged.mkv"]
        assert files[0]["health_message"]
        ok = cluster.api("GET", f"/api/libraries/{checked}/files?health=ok").json()["items"]
        assert [Path(f["path"]).name for f in ok] == ["good.mkv"]

        cluster.set_settings({"notify_urls": [receiver.url()], "notify_on_failure": True})
        far = cluster.add_library(elsewhere, "Far")
        mapping = {"from": str(elsewhere), "to": "/mnt/not-mounted", "node": "w1"}
        assert cluster.api("PATCH", f"/api/libraries/{far}", json={"path_mappings": [mapping]}).status_code == 200
        cluster.scan(far)
        job = cluster.wait_jobs(lambda js: any(j.library_id == far and j.status == "failed" for j in js), 60,
                                "unreachable job failed")
        failed = next(j for j in job if j.library_id == far)
        assert "not found on node w1" in failed.error and "/mnt/not-mounted" in failed.error
        assert (elsewhere / "far.mkv").read_bytes() == h264_clip.read_bytes()
        # the failure reached the notification target through the control worker's task
        assert receiver.received.wait(30), "no notification for the failed job"
        assert any("far.mkv" in post.get("message", "") for post in receiver.posts), receiver.posts


def test_a_dashboard_outage_costs_no_encode(tmp_path: Path, pg: str) -> None:
    """The dashboard goes away mid-encode for longer than the offline limit: the node keeps
    encoding (it answers the reaper's ping through the broker), keeps its result until the
    dashboard is back, and the job ends done after one attempt."""
    media = tmp_path / "media"
    _slow_clip(media)
    with running_cluster(tmp_path, pg, settings=FAST) as cluster:
        cluster.start_control()
        cluster.start_beat()
        cluster.start_worker("steady")
        library = cluster.add_library(media, profile=SLOW_PROFILE)
        cluster.scan(library)
        cluster.wait_jobs(lambda js: js[0].status == "running" and js[0].progress > 0, 60, "encode started")
        cluster.server.stop()
        time.sleep(8)  # twice node_offline_after_seconds: the reaper runs meanwhile
        with session_scope(cluster.engine) as session:
            job = session.scalar(select(Job))
            assert job.status in ("running", "verifying", "replacing"), job.status
            assert job.attempt == 1
        cluster.server = cluster.server.restarted()
        jobs = cluster.wait_jobs(lambda js: js[0].status == "done", 120, "job done after the outage")
        assert jobs[0].attempt == 1 and _claims(cluster, jobs[0].id) == ["steady"]
        _assert_single_hevc_output(media, ["slow.mkv"])
