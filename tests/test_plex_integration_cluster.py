"""A Plex library through the whole cluster: linked and picked over the API, scanned through Plex
on the control worker, converted by a node, Plex asked to rescan only the changed folders; a
Radarr webhook queues a new file at once; with Plex down the job still ends done and the failed
refresh is in its events. Real processes, PostgreSQL, Redis, ffmpeg and the fake Plex server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from codecshift.db import session_scope
from codecshift.media.probe import probe
from codecshift.models import JobEvent
from support.cluster import Cluster, running_cluster, wait_for
from support.fake_plex import FakeMovie, FakePlex, FakeSection, media
from support.plex_library import local_path, mappings, materialize
from support.services import fresh_postgres_database

pytestmark = pytest.mark.slow

FAST = {"dispatch_interval_seconds": 1}
CHARLIE = "/data/movies/Charlie (2003)/Charlie.mkv"


@pytest.fixture
def pg() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def fake() -> Iterator[FakePlex]:
    movies = [FakeMovie("101", "Alpha", 2001, [media("/data/movies/Alpha (2001)/Alpha.mkv")]),
              FakeMovie("102", "Bravo", 2002, [media("/data/movies/Bravo (2002)/Bravo.mkv")])]
    with FakePlex([FakeSection("1", "Movies", "movie", ["/data/movies"], movies=movies)]) as server:
        yield server


def _events(cluster: Cluster, job_id: int) -> list[JobEvent]:
    with session_scope(cluster.engine) as session:
        return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))


def test_plex_library_end_to_end_with_refresh_webhook_and_plex_down(tmp_path: Path, pg: str, fake: FakePlex,
                                                                     h264_clip: Path) -> None:
    nas = tmp_path / "nas"
    materialize(fake, nas, clip=h264_clip)
    with running_cluster(tmp_path, pg, settings=FAST) as cluster:
        cluster.start_control()
        cluster.start_worker("node-a", encoders="libx265")
        assert cluster.api("POST", "/api/plex/link", json={"url": fake.url, "token": fake.token}).ok
        created = cluster.api("POST", "/api/plex/libraries", json={
            "section_key": "1", "scan": True,
            "path_mappings": [*mappings(nas), {"from": "/data/movies", "to": "/movies", "node": "radarr"}]})
        assert created.status_code == 201, created.text
        library_id = created.json()["id"]

        jobs = cluster.wait_jobs(lambda js: len(js) == 2 and all(j.status == "done" for j in js), 120,
                                 "both movies converted")
        wait_for(lambda: len(fake.refreshes) == 2, 60, message="Plex refreshes")
        assert sorted(fake.refreshes) == [("1", "/data/movies/Alpha (2001)"), ("1", "/data/movies/Bravo (2002)")]
        scan = cluster.api("GET", f"/api/libraries/{library_id}/scans").json()["items"][0]
        assert (scan["status"], scan["total"], scan["files_probed"], scan["jobs_created"]) == ("done", 2, 0, 2)
        for job in jobs:
            assert probe(local_path(nas, job.path)).main_video.codec == "hevc"
            assert "plex_refreshed" in [e.event for e in _events(cluster, job.id)]

        # Plex goes down; Radarr announces a new film (in its own view, /movies): it is queued at once,
        # converted, and the refresh that cannot reach Plex is recorded without touching the job.
        key = cluster.api("POST", "/api/apikeys", json={"name": "radarr", "role": "webhook"}).json()["secret"]
        target = local_path(nas, CHARLIE)
        target.parent.mkdir(parents=True)
        target.write_bytes(h264_clip.read_bytes())
        fake.down()
        payload = {"eventType": "Download", "movie": {"title": "Charlie", "folderPath": "/movies/Charlie (2003)"},
                   "movieFile": {"relativePath": "Charlie.mkv"}}
        answer = requests.post(f"{cluster.url}/api/webhooks/radarr", json=payload, auth=("radarr", key), timeout=30)
        assert answer.status_code == 202, answer.text
        assert answer.json()["queued"][0]["paths"] == [CHARLIE]
        done = cluster.wait_jobs(lambda js: any(j.path == CHARLIE and j.status == "done" for j in js), 120,
                                 "the announced film converted")
        charlie = next(job for job in done if job.path == CHARLIE)

        def refresh_failed() -> list[JobEvent]:
            return [e for e in _events(cluster, charlie.id) if e.event == "plex_refresh_failed"]

        [failure] = wait_for(refresh_failed, 60, message="the failed refresh recorded")
        assert "cannot connect to Plex" in failure.message and "will try again in 60 s" in failure.message
        assert next(job for job in cluster.jobs() if job.id == charlie.id).status == "done"
        assert probe(target).main_video.codec == "hevc"
        assert len(fake.refreshes) == 2
