"""Libraries: create, change, delete, scans (202 with an id), health checks and files, with
roots that must be real folders and path filters that must stay inside the library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codecshift.db import session_scope
from codecshift.models import Job, Library, MediaFile
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


def test_removing_a_library_cancels_its_waiting_jobs_and_waits_for_running_ones(dash: Dashboard,
                                                                                  tmp_path: Path) -> None:
    root = tmp_path / "movies"
    library = dash.library(root)
    other = dash.library(tmp_path / "shows", name="Shows")
    queued = dash.job(str(root / "a.mkv"), "queued", library)
    approval = dash.job(str(root / "b.mkv"), "awaiting_approval", library)
    done = dash.job(str(root / "c.mkv"), "done", library)
    running = dash.job(str(root / "d.mkv"), "running", library, node="node-a")
    elsewhere = dash.job(str(tmp_path / "shows" / "e.mkv"), "queued", other)

    busy = dash.api("DELETE", f"/api/libraries/{library}")
    assert busy.status_code == 409 and error_of(busy)["code"] == "library_busy"
    assert "running" in error_of(busy)["message"]
    assert dash.api("GET", f"/api/libraries/{library}").status_code == 200  # nothing changed
    assert dash.api("GET", f"/api/jobs/{queued}").get_json()["status"] == "queued"

    with session_scope(dash.engine) as session:
        session.get(Job, running).status = "done"
    removed = dash.api("DELETE", f"/api/libraries/{library}")
    assert removed.status_code == 200 and removed.get_json() == {"deleted": library, "cancelled_jobs": 2}
    for job_id in (queued, approval):
        job = dash.api("GET", f"/api/jobs/{job_id}").get_json()
        assert job["status"] == "cancelled" and job["library_id"] is None
        assert job["error"] == "library 'Movies' was removed" and job["finished_at"]
        assert [e["event"] for e in job["events"]] == ["cancelled"]
    assert dash.api("GET", f"/api/jobs/{done}").get_json()["status"] == "done"
    assert dash.api("GET", f"/api/jobs/{elsewhere}").get_json()["status"] == "queued"
    assert dash.api("GET", "/api/jobs?status=queued").get_json()["total"] == 1
    assert root.is_dir()


def test_path_mappings_and_roots_are_checked_and_normalised_like_everywhere_else(dash: Dashboard,
                                                                                  tmp_path: Path) -> None:
    root = tmp_path / "movies"
    root.mkdir()
    base = {"name": "A", "roots": [str(root)]}
    cases = [
        ({"path_mappings": [{"from": "/data/../etc", "to": "/mnt"}]}, "path_mappings.0.from"),
        ({"path_mappings": [{"from": "/data", "to": "/mnt/x\x00"}]}, "path_mappings.0.to"),
        ({"path_mappings": [{"from": "/data", "to": "/mnt/a"}, {"from": "/data/", "to": "/mnt/b"}]},
         "path_mappings.1.from"),
        ({"path_mappings": [{"from": "/data", "to": "/mnt/a", "colour": "red"}]}, "path_mappings.0.colour"),
        ({"roots": ["/"]}, "roots.0"),
        ({"roots": [f"{root}/../movies"]}, "roots.0"),
        ({"roots": [str(root), f"{root}/"]}, "roots.1"),
    ]
    for extra, field in cases:
        response = dash.api("POST", "/api/libraries", json={**base, **extra})
        assert response.status_code == 400, extra
        assert error_of(response)["field"] == field, (extra, error_of(response))
    assert dash.api("GET", "/api/libraries").get_json()["items"] == []

    created = dash.api("POST", "/api/libraries", json={
        "name": "A", "roots": [f"{tmp_path}//movies/./"],
        "path_mappings": [{"from": "D:\\Media\\Movies\\", "to": f"{root}/", "node": None},
                          {"from": "/data//movies/", "to": "/mnt/movies", "node": "node-a"}]})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["roots"] == [str(root)]
    assert body["path_mappings"] == [{"from": "D:\\Media\\Movies", "to": str(root), "node": None},
                                     {"from": "/data/movies", "to": "/mnt/movies", "node": "node-a"}]
    refused = dash.api("PATCH", f"/api/libraries/{body['id']}", json={"roots": ["/"]})
    assert error_of(refused)["field"] == "roots.0"


def test_path_filters_work_for_a_plex_library_on_windows(dash: Dashboard, tmp_path: Path) -> None:
    with session_scope(dash.engine) as session:
        library = Library(name="Movies", kind="plex", roots=["D:\\Media\\Movies"], plex_section_key="1",
                          profile={}, path_mappings=[{"from": "D:\\Media\\Movies", "to": str(tmp_path),
                                                      "node": None}])
        session.add(library)
        session.flush()
        library_id = library.id
        for path in ("D:\\Media\\Movies\\Alien\\a.mkv", "D:\\Media\\Movies\\Heat\\h.mkv"):
            media = MediaFile(library_id=library_id, path=path, size=10, mtime_ns=1, state="queued")
            session.add(media)
            session.flush()
            session.add(Job(path=path, status="queued", library_id=library_id, media_file_id=media.id))
    files = f"/api/libraries/{library_id}/files"
    for typed in ("d:/media/movies/Alien", "D:\\Media\\Movies\\Alien\\", "d:\\MEDIA\\movies\\Alien"):
        answer = dash.api("GET", files, query_string={"path": typed})
        assert answer.status_code == 200, (typed, answer.get_json())
        assert [item["path"] for item in answer.get_json()["items"]] == ["D:\\Media\\Movies\\Alien\\a.mkv"]
        jobs = dash.api("GET", "/api/jobs", query_string={"path": typed}).get_json()
        assert jobs["total"] == 1 and jobs["items"][0]["path"] == "D:\\Media\\Movies\\Alien\\a.mkv"
    assert dash.api("GET", files, query_string={"path": "D:\\Media"}).status_code == 400
    assert error_of(dash.api("GET", files, query_string={"path": "D:\\Media\\Movies\\..\\x"}))["field"] == "path"


def test_healthcheck_skips_files_nobody_can_reach_and_files_already_being_checked(dash: Dashboard,
                                                                                  tmp_path: Path) -> None:
    root = tmp_path / "movies"
    library = dash.library(root)
    with session_scope(dash.engine) as session:
        for name, state in (("a.mkv", "done"), ("b.mkv", "skipped"), ("c.mkv", "missing"), ("d.mkv", "gone")):
            session.add(MediaFile(library_id=library, path=str(root / name), size=10, mtime_ns=1, state=state))
    first = dash.api("POST", f"/api/libraries/{library}/healthcheck")
    assert first.status_code == 202 and first.get_json() == {"jobs_created": 2}
    jobs = dash.api("GET", "/api/jobs?kind=healthcheck").get_json()["items"]
    assert sorted(job["path"] for job in jobs) == [str(root / "a.mkv"), str(root / "b.mkv")]
    assert {(job["status"], job["library_id"], job["attempt"], job["target_codec"]) for job in jobs} == \
        {("queued", library, 0, "hevc")}
    again = dash.api("POST", f"/api/libraries/{library}/healthcheck")
    assert again.get_json() == {"jobs_created": 0}
    assert dash.api("GET", "/api/jobs?kind=healthcheck").get_json()["total"] == 2


def test_nul_characters_are_refused_naming_the_field(dash: Dashboard, tmp_path: Path) -> None:
    library = dash.library(tmp_path / "movies")
    for url, field in ((f"/api/libraries/{library}/files?q=a%00b", "q"), ("/api/jobs?q=a%00b", "q"),
                       ("/api/jobs?node=x%00", "node"), ("/api/failures?q=%00", "q"),
                       (f"/api/libraries/{library}/files?path=/a%00b", "path")):
        response = dash.api("GET", url)
        assert response.status_code == 400, url
        assert error_of(response)["field"] == field, (url, error_of(response))
    for body, field in (({"name": "Fil\x00ms"}, "name"), ({"profile": {"backup_folder": "/b\x00"}},
                                                          "profile.backup_folder"),
                        ({"path_mappings": [{"from": "/a", "to": "/b", "node": "n\x00"}]}, "path_mappings.0.node")):
        response = dash.api("PATCH", f"/api/libraries/{library}", json=body)
        assert response.status_code == 400, body
        assert error_of(response)["field"] == field, (body, error_of(response))
    assert dash.api("GET", f"/api/libraries/{library}").get_json()["name"] == "Movies"


def test_a_body_larger_than_the_limit_is_refused_in_the_error_shape(dash: Dashboard) -> None:
    huge = '{"name": "' + "x" * (3 * 1024 * 1024) + '"}'
    response = dash.api("POST", "/api/libraries", data=huge, content_type="application/json")
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_entity_too_large"
    assert "too large" in error_of(response)["message"]
