"""/api/status and the whole queue's pause and resume, on a real database and broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codecshift.version import read_version
from support.dashboard_app import Dashboard, dashboard_app, error_of


@pytest.fixture
def dash(postgres_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard_app(postgres_url, tmp_path) as dashboard:
        yield dashboard


def test_status_reports_version_nodes_counts_running_jobs_and_failures(dash: Dashboard, tmp_path: Path) -> None:
    library = dash.library(tmp_path / "lib")
    dash.node("node-a")
    dash.node("node-old", version="0.0.1")
    running = dash.job(str(tmp_path / "lib" / "a.mkv"), "running", library, node="node-a", queue="cpu",
                       progress=37.5, fps=48.0, speed=1.9, eta_seconds=75.0, stage="encoding")
    dash.job(str(tmp_path / "lib" / "b.mkv"), "queued", library)
    failed = dash.job(str(tmp_path / "lib" / "c.mkv"), "failed", library, error="ffmpeg exited with 1")
    dash.history(3, size_before=1000, size_after=250)

    response = dash.api("GET", "/api/status")
    assert response.status_code == 200
    body = response.get_json()
    assert body["version"] == read_version()
    assert body["queue_paused"] is False
    nodes = {node["name"]: node for node in body["nodes"]}
    assert nodes["node-a"]["version_mismatch"] is False
    assert nodes["node-old"]["version_mismatch"] is True and nodes["node-old"]["version"] == "0.0.1"
    [job] = nodes["node-a"]["jobs"]
    assert job["id"] == running and job["progress"] == 37.5 and job["fps"] == 48.0 and job["eta_seconds"] == 75.0
    assert job["encoder"] == "libx265"  # known from the queue while the encode runs
    assert body["queue"]["by_status"]["queued"] == 1 and body["queue"]["by_status"]["running"] == 1
    assert body["queue"]["by_status"]["awaiting_approval"] == 0  # every status is present
    assert body["queue"]["pending_by_queue"] == {"unassigned": 1}
    assert body["recent_failures"][0]["id"] == failed and "exited with 1" in body["recent_failures"][0]["error"]
    assert body["space_saved"]["files"] == 3 and body["space_saved"]["saved_bytes"] == 2250
    assert body["space_saved"]["saved_percent"] == 75.0


def test_status_answers_304_while_nothing_changed(dash: Dashboard) -> None:
    first = dash.api("GET", "/api/status")
    etag = first.headers["ETag"]
    again = dash.api("GET", "/api/status", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    dash.node("node-new")
    changed = dash.api("GET", "/api/status", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_status_needs_credentials_and_refuses_node_keys(dash: Dashboard) -> None:
    assert error_of(dash.api("GET", "/api/status", key=""))["code"] == "unauthorized"
    assert dash.api("GET", "/api/status", key="cs_000000000000_wrong").status_code == 401
    assert error_of(dash.api("GET", "/api/status", key=dash.node_key))["code"] == "forbidden"
    reader = dash.signed_in("reader", admin=False)
    assert reader.get("/api/status").status_code == 200


def test_pausing_the_queue_stops_claims_and_resuming_requests_a_dispatch(dash: Dashboard, tmp_path: Path) -> None:
    library = dash.library(tmp_path / "lib")
    dash.node("node-a")
    job = dash.job(str(tmp_path / "lib" / "a.mkv"), "queued", library, queue="cpu")
    paused = dash.api("POST", "/api/queue/pause")
    assert paused.status_code == 200 and paused.get_json()["paused"] is True
    assert dash.api("GET", "/api/status").get_json()["queue_paused"] is True
    claim = dash.api("POST", f"/api/jobs/{job}/claim", key=dash.node_key, json={"node": "node-a", "attempt": 0})
    assert claim.status_code == 409 and "paused" in error_of(claim)["message"]

    before = dash.control_messages()
    resumed = dash.api("POST", "/api/queue/resume")
    assert resumed.status_code == 200 and resumed.get_json()["paused"] is False
    assert dash.control_messages() == before + 1  # the dispatch task is on the control queue
    claim = dash.api("POST", f"/api/jobs/{job}/claim", key=dash.node_key, json={"node": "node-a", "attempt": 0})
    assert claim.status_code == 200 and claim.get_json()["job"]["id"] == job


def test_queue_counts_and_roles(dash: Dashboard, tmp_path: Path) -> None:
    library = dash.library(tmp_path / "lib")
    for index in range(3):
        dash.job(str(tmp_path / "lib" / f"{index}.mkv"), "queued", library)
    body = dash.api("GET", "/api/queue").get_json()
    assert body["paused"] is False and body["by_status"]["queued"] == 3
    reader = dash.signed_in("reader", admin=False)
    assert reader.get("/api/queue").status_code == 200
    token = reader.get("/").get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    refused = reader.post("/api/queue/pause", headers={"X-CSRFToken": token})
    assert refused.status_code == 403 and error_of(refused)["code"] == "forbidden"
    assert dash.api("POST", "/api/queue/pause", key=dash.node_key).status_code == 403
    assert dash.api("GET", "/api/queue").get_json()["paused"] is False


def test_a_signed_in_admin_pauses_with_the_csrf_header_only(dash: Dashboard) -> None:
    admin = dash.signed_in()
    assert error_of(admin.post("/api/queue/pause"))["code"] == "csrf_failed"
    page = admin.get("/").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    assert admin.post("/api/queue/pause", headers={"X-CSRFToken": token}).status_code == 200
    assert dash.api("GET", "/api/queue").get_json()["paused"] is True


def test_queue_counts_agree_with_the_dispatchers_view(dash: Dashboard, tmp_path: Path) -> None:
    from codecshift.db import session_scope
    from codecshift.models import utcnow
    from codecshift.services.dispatcher import pending_by_queue

    library = dash.library(tmp_path / "lib")
    now = utcnow()
    for index, (queue, published) in enumerate([(None, None), (None, None), ("cpu", now), ("cpu", None),
                                                ("nvenc", now), ("nvenc", now)]):
        dash.job(str(tmp_path / "lib" / f"{index}.mkv"), "queued", library, queue=queue, published_at=published)
    dash.job(str(tmp_path / "lib" / "done.mkv"), "done", library, queue="cpu", published_at=now)
    body = dash.api("GET", "/api/queue").get_json()
    with session_scope(dash.engine) as session:
        assert body["pending_by_queue"] == pending_by_queue(session) == {"unassigned": 3, "cpu": 1, "nvenc": 2}
    assert body["by_status"]["queued"] == 6 and body["by_status"]["done"] == 1
