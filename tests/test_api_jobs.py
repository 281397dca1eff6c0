"""Jobs: listing with filters and paging, path filters inside libraries only, single and
bulk actions, priority, failures, and the calls nodes make during an attempt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codecshift.apikeys import create_key
from codecshift.db import session_scope
from support.dashboard_app import Dashboard, dashboard_app, error_of


@pytest.fixture
def dash(postgres_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard_app(postgres_url, tmp_path) as dashboard:
        yield dashboard


@pytest.fixture
def lib(dash: Dashboard, tmp_path: Path) -> tuple[int, Path]:
    root = tmp_path / "movies"
    return dash.library(root), root


def test_list_filters_search_and_pages(dash: Dashboard, lib: tuple[int, Path], tmp_path: Path) -> None:
    library, root = lib
    other = dash.library(tmp_path / "shows", name="Shows")
    ids = [dash.job(str(root / "Alien" / f"part {i}.mkv"), "queued", library) for i in range(5)]
    dash.job(str(root / "Heat.mkv"), "failed", library, node="node-a", queue="cpu", error="boom")
    dash.job(str(tmp_path / "shows" / "Pilot_1.mkv"), "done", other, node="node-b", queue="cpu")
    dash.job(str(tmp_path / "shows" / "Pilot%1.mkv"), "skipped", other, kind="healthcheck")

    body = dash.api("GET", "/api/jobs?per_page=2").get_json()
    assert body["total"] == 8 and len(body["items"]) == 2 and body["per_page"] == 2
    assert dash.api("GET", "/api/jobs?per_page=2&page=4").get_json()["items"][-1]["id"] == ids[0]
    assert dash.api("GET", "/api/jobs?page=99").get_json()["items"] == []
    assert dash.api("GET", "/api/jobs?status=queued").get_json()["total"] == 5
    assert dash.api("GET", f"/api/jobs?library_id={other}").get_json()["total"] == 2
    assert dash.api("GET", "/api/jobs?queue=cpu").get_json()["total"] == 2
    assert dash.api("GET", "/api/jobs?node=node-a").get_json()["items"][0]["error"] == "boom"
    assert dash.api("GET", "/api/jobs?kind=healthcheck").get_json()["total"] == 1
    # Search is a plain substring: % and _ are not wildcards.
    assert dash.api("GET", "/api/jobs?q=Pilot%251").get_json()["total"] == 1
    assert dash.api("GET", "/api/jobs?q=alien").get_json()["total"] in (0, 5)  # case follows the database
    assert dash.api("GET", "/api/jobs?q=Alien").get_json()["total"] == 5


def test_path_filter_accepts_folders_inside_a_library_only(dash: Dashboard, lib: tuple[int, Path],
                                                           tmp_path: Path) -> None:
    library, root = lib
    dash.job(str(root / "Alien" / "a.mkv"), "queued", library)
    dash.job(str(root / "Aliens" / "b.mkv"), "queued", library)
    dash.job(str(root / "Heat.mkv"), "queued", library)
    assert dash.api("GET", f"/api/jobs?path={root}/Alien").get_json()["total"] == 1  # not Aliens
    assert dash.api("GET", f"/api/jobs?path={root}/Alien/").get_json()["total"] == 1
    assert dash.api("GET", f"/api/jobs?path={root}/Heat.mkv").get_json()["total"] == 1
    assert dash.api("GET", f"/api/jobs?path={root}").get_json()["total"] == 3
    for outside in ("/etc", str(tmp_path), f"{root}/../other", "movies/Alien", f"{root}x"):
        response = dash.api("GET", "/api/jobs", query_string={"path": outside})
        assert response.status_code == 400, outside
        assert error_of(response)["field"] == "path", outside


def test_list_refuses_wrong_types(dash: Dashboard) -> None:
    for query, field in (("status=sleeping", "status"), ("page=0", "page"), ("page=two", "page"),
                         ("per_page=0", "per_page"), ("library_id=-1", "library_id"), ("kind=scan", "kind"),
                         ("unknown=1", "unknown")):
        response = dash.api("GET", f"/api/jobs?{query}")
        assert response.status_code == 400, query
        assert error_of(response)["field"] == field, query


def test_get_one_job_with_its_events(dash: Dashboard, lib: tuple[int, Path]) -> None:
    library, root = lib
    job = dash.job(str(root / "a.mkv"), "failed", library, log_tail="line 1\nline 2")
    body = dash.api("GET", f"/api/jobs/{job}").get_json()
    assert body["id"] == job and body["log_tail"] == "line 1\nline 2" and body["events"] == []
    assert error_of(dash.api("GET", "/api/jobs/424242"))["code"] == "not_found"
    assert dash.api("GET", "/api/jobs/abc").status_code == 404


def test_single_actions_follow_the_status(dash: Dashboard, lib: tuple[int, Path]) -> None:
    library, root = lib
    failed = dash.job(str(root / "a.mkv"), "failed", library)
    queued = dash.job(str(root / "b.mkv"), "queued", library)
    waiting = dash.job(str(root / "c.mkv"), "awaiting_approval", library)
    assert dash.api("POST", f"/api/jobs/{failed}/requeue").get_json() == {"action": "requeue", "changed": [failed]}
    assert dash.api("POST", f"/api/jobs/{queued}/requeue").get_json()["changed"] == []  # already queued
    assert dash.api("POST", f"/api/jobs/{waiting}/approve").get_json()["changed"] == [waiting]
    top = dash.api("POST", f"/api/jobs/{queued}/move_to_top").get_json()["changed"]
    assert top == [queued]
    assert dash.api("GET", "/api/jobs?status=queued").get_json()["items"][0]["id"] == queued
    assert dash.api("POST", f"/api/jobs/{queued}/cancel").get_json()["changed"] == [queued]
    assert dash.api("POST", f"/api/jobs/{queued}/delete").get_json()["changed"] == [queued]
    assert error_of(dash.api("POST", f"/api/jobs/{queued}/requeue"))["code"] == "not_found"
    assert error_of(dash.api("POST", f"/api/jobs/{failed}/explode"))["code"] == "not_found"
    assert dash.api("POST", f"/api/jobs/{failed}/requeue", key=dash.node_key).status_code == 403


def test_bulk_actions_and_their_validation(dash: Dashboard, lib: tuple[int, Path]) -> None:
    library, root = lib
    ids = [dash.job(str(root / f"{i}.mkv"), "failed", library) for i in range(3)]
    running = dash.job(str(root / "r.mkv"), "running", library, node="node-a")
    response = dash.api("POST", "/api/jobs/actions", json={"action": "requeue", "ids": [*ids, running]})
    assert response.status_code == 200 and response.get_json()["changed"] == ids
    conflict = dash.api("POST", "/api/jobs/actions", json={"action": "delete", "ids": [running]})
    assert conflict.status_code == 409 and "cancel it first" in error_of(conflict)["message"]
    for body, field in (({"ids": ids}, "action"), ({"action": "requeue"}, "ids"),
                        ({"action": "explode", "ids": ids}, "action"), ({"action": "requeue", "ids": []}, "ids"),
                        ({"action": "requeue", "ids": ["1"]}, "ids.0"), ({"action": "requeue", "ids": 1}, "ids"),
                        ({"action": "requeue", "ids": ids, "all": True}, "all")):
        response = dash.api("POST", "/api/jobs/actions", json=body)
        assert response.status_code == 400, body
        assert error_of(response)["field"] == field, body
    missing = dash.api("POST", "/api/jobs/actions", json={"action": "cancel", "ids": [ids[0], 999999]})
    assert missing.status_code == 404 and "999999" in error_of(missing)["message"]
    assert dash.api("GET", f"/api/jobs/{ids[0]}").get_json()["status"] == "queued"  # nothing changed


def test_priority(dash: Dashboard, lib: tuple[int, Path]) -> None:
    library, root = lib
    job = dash.job(str(root / "a.mkv"), "queued", library)
    assert dash.api("PUT", f"/api/jobs/{job}/priority", json={"priority": 7}).get_json()["changed"] == [job]
    assert dash.api("GET", f"/api/jobs/{job}").get_json()["priority"] == 7
    for body, field in (({"priority": "7"}, "priority"), ({}, "priority"), ({"priority": 10**9}, "priority")):
        assert error_of(dash.api("PUT", f"/api/jobs/{job}/priority", json=body))["field"] == field
    assert dash.api("PUT", "/api/jobs/999/priority", json={"priority": 1}).status_code == 404


def test_failures_list_with_log_tail(dash: Dashboard, lib: tuple[int, Path]) -> None:
    library, root = lib
    log = "\n".join(f"line {i}" for i in range(100))
    failed = dash.job(str(root / "bad.mkv"), "failed", library, error="verification failed", log_tail=log,
                      node="node-a")
    dash.job(str(root / "good.mkv"), "done", library)
    body = dash.api("GET", "/api/failures?lines=3").get_json()
    assert body["total"] == 1
    [item] = body["items"]
    assert item["id"] == failed and item["error"] == "verification failed"
    assert item["log_tail"] == "line 97\nline 98\nline 99"
    assert dash.api("GET", "/api/failures?node=node-b").get_json()["total"] == 0
    assert dash.api("GET", "/api/failures?q=bad").get_json()["total"] == 1
    assert error_of(dash.api("GET", "/api/failures?lines=-1"))["field"] == "lines"
    assert dash.api("POST", f"/api/jobs/{failed}/requeue").get_json()["changed"] == [failed]
    assert dash.api("GET", "/api/failures").get_json()["total"] == 0


def test_node_calls_validate_and_refuse_stale_attempts(dash: Dashboard, lib: tuple[int, Path]) -> None:
    library, root = lib
    dash.node("node-a")
    job = dash.job(str(root / "a.mkv"), "queued", library, queue="cpu")
    key = dash.node_key
    with session_scope(dash.engine) as session:  # another node key: it cannot act as node-a
        stranger = create_key(session, "another node", "node").secret
    refused = dash.api("POST", f"/api/jobs/{job}/claim", key=stranger, json={"node": "node-a", "attempt": 0})
    assert refused.status_code == 403 and "registered with another key" in error_of(refused)["message"]
    registration = {"name": "node-a", "hostname": "a.local", "version": "x", "queues": ["cpu"],
                    "capabilities": {"families": {"cpu": ["hevc"]}}, "concurrency": {"cpu": 1}}
    assert dash.api("POST", "/api/nodes/register", key=stranger, json=registration).status_code == 403
    assert dash.api("POST", "/api/nodes/register", key=stranger, json={**registration, "name": "node-c"}) \
        .status_code == 200, "a node key may register nodes of its own"
    assert dash.api("POST", "/api/nodes/register", key=key, json=registration).status_code == 200
    assert error_of(dash.api("POST", f"/api/jobs/{job}/claim", key=key, json={"attempt": 0}))["field"] == "node"
    assert error_of(dash.api("POST", f"/api/jobs/{job}/claim", key=key,
                             json={"node": "node-a", "attempt": "0"}))["field"] == "attempt"
    assert dash.api("POST", f"/api/jobs/{job}/claim", key=key, json={"node": "node-a", "attempt": 5}).status_code == 409
    assert dash.api("POST", "/api/jobs/999/claim", key=key, json={"node": "node-a", "attempt": 0}).status_code == 409
    spec = dash.api("POST", f"/api/jobs/{job}/claim", key=key, json={"node": "node-a", "attempt": 0}).get_json()
    attempt = spec["job"]["attempt"]
    assert dash.api("POST", f"/api/jobs/{job}/claim", key=key, json={"node": "node-a", "attempt": 0}).status_code == 409

    progress = {"node": "node-a", "attempt": attempt, "stage": "encoding", "progress": 50, "fps": 30}
    assert dash.api("POST", f"/api/jobs/{job}/progress", key=key, json=progress).get_json() == \
        {"accepted": True, "cancel": False}
    assert error_of(dash.api("POST", f"/api/jobs/{job}/progress", key=key,
                             json={**progress, "progress": 101}))["field"] == "progress"
    assert dash.api("POST", f"/api/jobs/{job}/progress", key=key,
                    json={**progress, "attempt": attempt + 1}).get_json()["accepted"] is False
    assert dash.api("PUT", f"/api/jobs/{job}/journal", key=key,
                    json={"node": "node-b", "attempt": attempt, "journal": {}}).status_code == 403
    forged = {"tag": f"job{job}-a{attempt}", "source": str(root / "a.mkv"), "temp": "/etc/hostname",
              "journal_file": "/etc/passwd"}
    refused = dash.api("PUT", f"/api/jobs/{job}/journal", key=key,
                       json={"node": "node-a", "attempt": attempt, "journal": forged})
    assert refused.status_code == 400 and error_of(refused)["code"] == "invalid_journal"
    escaped = dash.api("POST", f"/api/jobs/{job}/result", key=key, json={
        "node": "node-a", "attempt": attempt, "status": "done", "output_path": "/etc/shadow"})
    assert escaped.status_code == 400 and error_of(escaped)["field"] == "output_path"
    assert error_of(dash.api("PUT", f"/api/jobs/{job}/journal", key=key,
                             json={"node": "node-a", "attempt": attempt, "journal": []}))["field"] == "journal"
    result = {"node": "node-a", "attempt": attempt, "status": "failed", "reason": "boom", "stage": "verifying"}
    assert error_of(dash.api("POST", f"/api/jobs/{job}/result", key=key,
                             json={**result, "status": "exploded"}))["field"] == "status"
    assert dash.api("POST", f"/api/jobs/{job}/result", key=key, json=result).get_json()["status"] == "failed"
    assert dash.api("POST", f"/api/jobs/{job}/result", key=key, json=result).status_code == 409
    recovered = {"node": "node-a", "attempt": attempt, "action": "rolled_back"}
    assert dash.api("POST", f"/api/jobs/{job}/recovered", key=key, json=recovered).status_code == 409
    assert error_of(dash.api("POST", f"/api/jobs/{job}/recovered", key=key,
                             json={**recovered, "action": "maybe"}))["field"] == "action"
    assert dash.api("GET", "/api/nodes/node-a/replacing", key=key).get_json() == {"jobs": []}
    # A signed-in person cannot pose as a node.
    assert dash.api("POST", f"/api/jobs/{job}/progress", key="", json=progress).status_code == 401
