"""Libraries: create, change, delete, scans (202 with an id), health checks and files, with
roots that must be real folders and path filters that must stay inside the library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codecshift.db import session_scope
from codecshift.models import MediaFile
from support.dashboard_app import Dashboard, dashboard_app, error_of


@pytest.fixture
def dash(postgres_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard_app(postgres_url, tmp_path) as dashboard:
        yield dashboard


def test_create_get_change_and_delete(dash: Dashboard, tmp_path: Path) -> None:
    root = tmp_path / "movies"
    root.mkdir()
    created = dash.api("POST", "/api/libraries", json={
        "name": "Movies", "roots": [f"{root}/"], "profile": {"target_codec": "av1", "min_file_size_mb": "100"},
        "path_mappings": [{"from": str(root), "to": "/mnt/movies", "node": "node-a"}],
        "rescan_interval_minutes": 60})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["roots"] == [str(root)] and body["profile"] == {"target_codec": "av1", "min_file_size_mb": 100}
    assert body["path_mappings"] == [{"from": str(root), "to": "/mnt/movies", "node": "node-a"}]
    library = body["id"]
    assert dash.api("GET", f"/api/libraries/{library}").get_json()["rescan_interval_minutes"] == 60
    assert [item["name"] for item in dash.api("GET", "/api/libraries").get_json()["items"]] == ["Movies"]
    duplicate = dash.api("POST", "/api/libraries", json={"name": "Movies", "roots": [str(root)]})
    assert duplicate.status_code == 409 and error_of(duplicate)["field"] == "name"

    patched = dash.api("PATCH", f"/api/libraries/{library}", json={"name": "Films", "rescan_interval_minutes": None,
                                                                    "enabled": False})
    assert patched.status_code == 200
    assert patched.get_json()["name"] == "Films" and patched.get_json()["rescan_interval_minutes"] is None
    assert dash.api("DELETE", f"/api/libraries/{library}").get_json() == {"deleted": library, "cancelled_jobs": 0}
    assert root.is_dir()  # files stay
    for method in ("GET", "PATCH", "DELETE"):
        response = dash.api(method, f"/api/libraries/{library}", json={} if method == "PATCH" else None)
        assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_create_refuses_bad_input_naming_the_field(dash: Dashboard, tmp_path: Path) -> None:
    root = tmp_path / "movies"
    root.mkdir()
    (tmp_path / "file.mkv").write_bytes(b"x")
    cases = [
        ({"roots": [str(root)]}, "name"),
        ({"name": "A"}, "roots"),
        ({"name": "A", "roots": []}, "roots"),
        ({"name": "A", "roots": "movies"}, "roots"),
        ({"name": "A", "roots": ["movies"]}, "roots.0"),
        ({"name": "A", "roots": [str(tmp_path / "missing")]}, "roots.0"),
        ({"name": "A", "roots": [str(root), str(tmp_path / "file.mkv")]}, "roots.1"),
        ({"name": "A", "roots": [str(root)], "enabled": "yes"}, "enabled"),
        ({"name": "A", "roots": [str(root)], "rescan_interval_minutes": -5}, "rescan_interval_minutes"),
        ({"name": "A", "roots": [str(root)], "profile": {"colour": "red"}}, "profile.colour"),
        ({"name": "A", "roots": [str(root)], "profile": {"queue_paused": True}}, "profile.queue_paused"),
        ({"name": "A", "roots": [str(root)], "profile": {"min_saving_percent": 99}}, "profile.min_saving_percent"),
        ({"name": "A", "roots": [str(root)], "path_mappings": [{"from": "x", "to": "/y"}]}, "path_mappings.0.from"),
        ({"name": "A", "roots": [str(root)], "kind": "plex"}, "kind"),
    ]
    for body, field in cases:
        response = dash.api("POST", "/api/libraries", json=body)
        assert response.status_code == 400, body
        assert error_of(response)["field"] == field, (body, error_of(response))
    assert dash.api("POST", "/api/libraries", data="{not json", content_type="application/json").status_code == 400
    assert error_of(dash.api("POST", "/api/libraries", json=[1]))["code"] == "invalid_json"
    assert dash.api("GET", "/api/libraries").get_json()["items"] == []
    library = dash.library(root)
    refused = dash.api("PATCH", f"/api/libraries/{library}", json={"roots": ["/nonexistent/folder"]})
    assert error_of(refused)["field"] == "roots.0"
    assert dash.api("GET", f"/api/libraries/{library}").get_json()["roots"] == [str(root)]


def test_scan_starts_once_and_reports_progress(dash: Dashboard, tmp_path: Path) -> None:
    library = dash.library(tmp_path / "movies")
    before = dash.control_messages("scan")
    started = dash.api("POST", f"/api/libraries/{library}/scan")
    assert started.status_code == 202
    scan = started.get_json()
    assert scan["created"] is True and scan["status"] == "queued" and scan["library_id"] == library
    assert dash.control_messages("scan") == before + 1
    again = dash.api("POST", f"/api/libraries/{library}/scan").get_json()
    assert again["created"] is False and again["id"] == scan["id"]
    assert dash.api("GET", f"/api/scans/{scan['id']}").get_json()["id"] == scan["id"]
    listing = dash.api("GET", f"/api/libraries/{library}/scans?per_page=1").get_json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == scan["id"]
    assert dash.api("POST", f"/api/scans/{scan['id']}/cancel").status_code == 202
    assert error_of(dash.api("GET", "/api/scans/999"))["code"] == "not_found"
    assert dash.api("POST", "/api/scans/999/cancel").status_code == 404
    assert dash.api("POST", "/api/libraries/999/scan").status_code == 404
    assert error_of(dash.api("GET", f"/api/libraries/{library}/scans?page=x"))["field"] == "page"
    assert dash.api("POST", f"/api/libraries/{library}/scan", key=dash.node_key).status_code == 403


def test_healthcheck_queues_one_job_per_file(dash: Dashboard, tmp_path: Path) -> None:
    root = tmp_path / "movies"
    library = dash.library(root)
    with session_scope(dash.engine) as session:
        for name in ("a.mkv", "b.mkv"):
            session.add(MediaFile(library_id=library, path=str(root / name), size=10, mtime_ns=1, state="done"))
    response = dash.api("POST", f"/api/libraries/{library}/healthcheck")
    assert response.status_code == 202 and response.get_json() == {"jobs_created": 2}
    assert dash.api("GET", "/api/jobs?kind=healthcheck").get_json()["total"] == 2
    assert dash.api("POST", "/api/libraries/999/healthcheck").status_code == 404


def test_files_filter_by_state_health_text_and_folder_inside_the_library(dash: Dashboard, tmp_path: Path) -> None:
    root = tmp_path / "movies"
    library = dash.library(root)
    other = dash.library(tmp_path / "shows", name="Shows")
    with session_scope(dash.engine) as session:
        for name, state, health in (("Alien/a.mkv", "done", "ok"), ("Aliens/b.mkv", "queued", None),
                                    ("Heat.mkv", "skipped", "corrupt")):
            session.add(MediaFile(library_id=library, path=str(root / name), size=10, mtime_ns=1, state=state,
                                  health=health))
    files = f"/api/libraries/{library}/files"
    assert dash.api("GET", files).get_json()["total"] == 3
    assert dash.api("GET", f"{files}?state=done").get_json()["items"][0]["path"].endswith("Alien/a.mkv")
    assert dash.api("GET", f"{files}?health=unchecked").get_json()["total"] == 1
    assert dash.api("GET", f"{files}?health=corrupt").get_json()["total"] == 1
    assert dash.api("GET", f"{files}?q=Heat").get_json()["total"] == 1
    assert dash.api("GET", f"{files}", query_string={"path": str(root / "Alien")}).get_json()["total"] == 1
    assert dash.api("GET", f"{files}?per_page=1&page=3").get_json()["items"][0]["path"].endswith("Heat.mkv")
    for outside in (str(tmp_path / "shows"), "/", "/etc/passwd", f"{root}/../shows", "Alien"):
        response = dash.api("GET", files, query_string={"path": outside})
        assert response.status_code == 400, outside
        assert error_of(response)["field"] == "path"
    assert error_of(dash.api("GET", f"{files}?health=sick"))["field"] == "health"
    assert dash.api("GET", "/api/libraries/999/files").status_code == 404
    assert dash.api("GET", f"/api/libraries/{other}/files").get_json()["total"] == 0
