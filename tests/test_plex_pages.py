"""Plex in the dashboard and the API: linking (checked against the fake server through plexapi),
a wrong token and a wrong URL, sections becoming libraries, the Plex library's form and scan
progress, and the webhooks with their least-privilege key."""

from __future__ import annotations

import base64
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from codecshift import settings_store
from codecshift.db import session_scope
from codecshift.models import Job, Library, MediaFile, ScanRun
from support.auth_app import inline_code
from support.cluster import TEST_SETTINGS
from support.dashboard_app import Dashboard, csrf_from, dashboard_app
from support.fake_plex import FakePlex, running
from support.plex_library import local_path, mappings, materialize
from tasks import names
from web.extensions import CELERY_KEY


@pytest.fixture
def fake() -> Iterator[FakePlex]:
    yield from running()


@pytest.fixture
def dash(sqlite_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard_app(sqlite_url, tmp_path) as dashboard:
        with session_scope(dashboard.engine) as session:
            settings_store.set_many(session, TEST_SETTINGS)
        yield dashboard


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _settings(dash: Dashboard) -> dict[str, Any]:
    with session_scope(dash.engine) as session:
        return settings_store.load_all(session)


def _link(dash: Dashboard, fake: FakePlex) -> None:
    response = dash.api("POST", "/api/plex/link", json={"url": fake.url, "token": fake.token, "timeout": 5})
    assert response.status_code == 200, response.get_json()


def _control_messages(dash: Dashboard) -> list[tuple[str, list[Any]]]:
    """(task, args) of the messages waiting for the control worker, oldest first, taken off the queue."""
    out = []
    while (raw := dash.redis.rpop("control")) is not None:
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], body[0]))
    return out


def _run_ingests(dash: Dashboard) -> list[dict[str, Any]]:
    """Run the queued webhook work as the control worker would (in this process)."""
    import tasks.plex_tasks  # noqa: F401 - registers the task

    app = dash.app.extensions[CELERY_KEY]
    results = []
    for task, args in _control_messages(dash):
        if task == names.PLEX_INGEST:
            result = app.tasks[task].apply(args=args)
            assert result.successful(), result.result
            results.append(result.result)
    return results


def test_link_test_sections_and_unlink_through_the_api(dash: Dashboard, fake: FakePlex, tmp_path: Path) -> None:
    assert dash.api("GET", "/api/plex").get_json()["linked"] is False
    wrong = dash.api("POST", "/api/plex/link", json={"url": fake.url, "token": "wrong-token-123", "timeout": 5})
    assert wrong.status_code == 400
    assert wrong.get_json()["error"]["code"] == "plex_unauthorized" and wrong.get_json()["error"]["field"] == "token"
    assert "wrong-token-123" not in wrong.get_data(as_text=True)
    nowhere = dash.api("POST", "/api/plex/link", json={"url": f"http://127.0.0.1:{_free_port()}",
                                                       "token": fake.token, "timeout": 2})
    assert nowhere.status_code == 400 and nowhere.get_json()["error"]["code"] == "plex_unreachable"
    assert nowhere.get_json()["error"]["field"] == "url"
    fake.not_plex = True
    router = dash.api("POST", "/api/plex/link", json={"url": fake.url, "token": fake.token, "timeout": 5})
    assert router.status_code == 400 and router.get_json()["error"]["code"] == "plex_not_plex"
    fake.not_plex = False
    assert _settings(dash)["plex_url"] == "" and _settings(dash)["plex_token"] == ""  # nothing saved

    linked = dash.api("POST", "/api/plex/link", json={"url": fake.url + "/", "token": fake.token, "timeout": 5})
    assert linked.status_code == 200
    body = linked.get_json()
    assert body["linked"] and body["token_set"] and body["url"] == fake.url
    assert body["server"] == {"name": "Fake Plex", "machine_identifier": fake.machine_identifier,
                              "version": fake.version}
    assert fake.token not in linked.get_data(as_text=True)
    assert fake.token not in dash.api("GET", "/api/plex").get_data(as_text=True)
    assert dash.api("GET", "/api/settings").get_json()["settings"]["plex_token"] == {"set": True}
    assert dash.api("POST", "/api/plex/test").get_json()["server"]["name"] == "Fake Plex"

    sections = dash.api("GET", "/api/plex/sections").get_json()["items"]
    assert [(s["key"], s["type"], s["library_id"]) for s in sections] == [("1", "movie", None), ("2", "show", None)]
    nas = tmp_path / "nas"
    created = dash.api("POST", "/api/plex/libraries", json={
        "section_key": "1", "profile": {"target_codec": "av1"}, "path_mappings": mappings(nas)})
    assert created.status_code == 201, created.get_json()
    library = created.get_json()
    assert (library["kind"], library["name"], library["roots"], library["plex_section_key"]) == \
        ("plex", "Movies", ["/data/movies"], "1")
    assert library["path_mappings"] == mappings(nas) and library["profile"] == {"target_codec": "av1"}
    again = dash.api("POST", "/api/plex/libraries", json={"section_key": "1"})
    assert again.status_code == 409 and again.get_json()["error"]["field"] == "section_key"
    assert dash.api("POST", "/api/plex/libraries", json={"section_key": "3"}).status_code == 404  # music
    bad = dash.api("POST", "/api/plex/libraries", json={"section_key": "2", "path_mappings": [{"from": "data"}]})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "path_mappings"
    listed = dash.api("GET", "/api/plex/sections").get_json()["items"]
    assert listed[0]["library_id"] == library["id"] and listed[1]["library_id"] is None

    # A blank token keeps the stored one; another server at the linked URL is refused by identity.
    assert dash.api("POST", "/api/plex/link", json={"url": fake.url, "timeout": 5}).status_code == 200
    fake.stop()
    impostor = FakePlex(machine_identifier="another-machine", token=fake.token)
    impostor.port = fake.port
    with impostor:
        refused = dash.api("POST", "/api/plex/test")
        assert refused.status_code == 502 and refused.get_json()["error"]["code"] == "plex_wrong_server"
    fake.start()
    unlinked = dash.api("DELETE", "/api/plex/link").get_json()
    assert unlinked["linked"] is False and unlinked["token_set"] is False and unlinked["url"] is None
    gone = dash.api("GET", "/api/plex/sections")
    assert gone.status_code == 409 and gone.get_json()["error"]["code"] == "plex_not_linked"
    assert dash.api("GET", f"/api/libraries/{library['id']}").status_code == 200  # the library stays


def test_link_and_pick_sections_on_the_plex_page(dash: Dashboard, fake: FakePlex, tmp_path: Path) -> None:
    client = dash.signed_in()
    page = client.get("/plex")
    assert page.status_code == 200 and 'data-testid="plex-not-linked"' in page.get_data(as_text=True)
    assert 'data-testid="nav-plex"' in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    no_csrf = client.post("/plex/link", data={"url": fake.url, "token": fake.token})
    assert no_csrf.status_code == 400 and _settings(dash)["plex_url"] == ""
    wrong = client.post("/plex/link", data={"csrf_token": token, "url": fake.url, "token": "nope-nope-42",
                                            "verify_tls": "true", "timeout": "5"})
    text = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and "refused the token" in text and 'data-testid="error-token"' in text
    assert "nope-nope-42" not in text and _settings(dash)["plex_token"] == ""
    linked = client.post("/plex/link", data={"csrf_token": token, "url": fake.url, "token": fake.token,
                                             "verify_tls": "true", "timeout": "5"})
    assert linked.status_code == 302
    page = client.get("/plex")
    text = page.get_data(as_text=True)
    assert "Linked to Fake Plex" in text and fake.version in text and fake.token not in text
    assert text.count('data-testid="plex-section"') == 2 and not inline_code(text)
    picked = client.post("/plex/sections", data={"csrf_token": token, "section": ["1", "2"], "scan_now": "false"})
    assert picked.status_code == 302
    with session_scope(dash.engine) as session:
        libraries = {lib.name: lib for lib in session.scalars(select(Library))}
    assert set(libraries) == {"Movies", "TV Shows"} and libraries["TV Shows"].plex_section_type == "show"
    assert client.get("/plex").get_data(as_text=True).count('data-testid="plex-section-library"') == 2

    # The library form of a Plex library: its folders are Plex's, the mapping editor tells where they are.
    nas = tmp_path / "nas"
    (nas / "movies").mkdir(parents=True)
    movies = libraries["Movies"].id
    form = client.get(f"/libraries/{movies}").get_data(as_text=True)
    assert 'data-testid="plex-roots"' in form and 'data-testid="plex-root-unreachable"' in form
    saved = client.post(f"/libraries/{movies}", data={
        "csrf_token": token, "name": "Movies", "enabled": "true", "rescan_interval_minutes": "",
        "path_mappings": f"/data => {nas}\n/data => /Volumes/media @ macmini\n/tv => /data/tv @ sonarr",
        "scan_now": "false"})
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    with session_scope(dash.engine) as session:
        library = session.get(Library, movies)
        assert library.roots == ["/data/movies"] and library.kind == "plex"
        assert library.path_mappings[1] == {"from": "/data", "to": "/Volumes/media", "node": "macmini"}
    form = client.get(f"/libraries/{movies}").get_data(as_text=True)
    assert f"the control worker finds it at {nas}/movies" in form and "plex-root-unreachable" not in form

    assert "answers (Plex" in client.post("/plex/test", data={"csrf_token": token},
                                          follow_redirects=True).get_data(as_text=True)
    reader = dash.signed_in("reader", admin=False)
    seen = reader.get("/plex").get_data(as_text=True)
    assert "Fake Plex" in seen and 'data-testid="plex-link"' not in seen and 'name="section"' not in seen
    assert reader.post("/plex/unlink", data={"csrf_token": csrf_from(seen)}).status_code == 403
    client.post("/plex/unlink", data={"csrf_token": token})
    assert _settings(dash)["plex_url"] == "" and _settings(dash)["plex_token"] == ""


def test_a_plex_scan_shows_live_progress_on_the_libraries_pages(dash: Dashboard) -> None:
    with session_scope(dash.engine) as session:
        library = Library(name="Movies", kind="plex", roots=["/data/movies"], plex_section_key="1",
                          plex_section_type="movie", profile={}, path_mappings=[])
        session.add(library)
        session.flush()
        session.add(ScanRun(library_id=library.id, status="running", total=10, files_seen=3, jobs_created=2))
        library_id = library.id
    client = dash.signed_in()
    for url in ("/libraries?partial=1", f"/libraries/{library_id}?partial=1"):
        text = client.get(url).get_data(as_text=True)
        assert 'max="10" value="3"' in text and "3 seen of about 10" in text, url
    assert "Plex section 1 (movies)" in client.get("/libraries").get_data(as_text=True)


# -- webhooks ------------------------------------------------------------------------


def _webhook_key(dash: Dashboard) -> str:
    created = dash.api("POST", "/api/apikeys", json={"name": "plex and the arrs", "role": "webhook"})
    assert created.status_code == 201
    return created.get_json()["secret"]


TEST_EVENT = {"eventType": "Test", "series": {"title": "Test"}, "episodes": []}


def test_webhooks_take_only_a_webhook_or_admin_key_in_header_basic_auth_or_url(dash: Dashboard) -> None:
    client = dash.client()
    url = "/api/webhooks/sonarr"
    assert client.post(url, json=TEST_EVENT).status_code == 401
    assert client.post(url, json=TEST_EVENT, headers={"X-API-Key": dash.node_key}).status_code == 403
    key = _webhook_key(dash)
    ok = client.post(url, json=TEST_EVENT, headers={"X-API-Key": key})
    assert ok.status_code == 200 and ok.get_json()["ignored"] is True and "test" in ok.get_json()["reason"]
    assert client.post(f"{url}?apikey={key}", json=TEST_EVENT).status_code == 200
    assert client.post(url, json=TEST_EVENT, auth=("sonarr", key)).status_code == 200
    assert client.post(url, json=TEST_EVENT, auth=("sonarr", "cs_000000000000_" + "A" * 43)).status_code == 401
    assert client.post(f"{url}?apikey=nonsense", json=TEST_EVENT).status_code == 401
    assert client.post(url, json=TEST_EVENT, headers={"X-API-Key": dash.admin_key}).status_code == 200
    # The webhook key reaches nothing else, and keys in URLs are accepted nowhere else.
    assert client.get("/api/libraries", headers={"X-API-Key": key}).status_code == 403
    assert client.get("/api/settings", headers={"X-API-Key": key}).status_code == 403
    assert client.get(f"/api/libraries?apikey={dash.admin_key}").status_code == 401
    assert client.get("/api/libraries", auth=("admin", dash.admin_key)).status_code == 401


def _plex_multipart(payload: dict[str, Any]) -> tuple[bytes, str]:
    files = {"payload": (None, json.dumps(payload)), "thumb": ("thumb.jpg", b"\xff\xd8\xff\xe0jpeg", "image/jpeg")}
    prepared = requests.Request("POST", "http://codecshift.local/", files=files).prepare()
    return prepared.body, prepared.headers["Content-Type"]


def _plex_event(fake: FakePlex, event: str = "library.new", rating_key: str = "612", section: int = 2,
                server: str | None = None) -> dict[str, Any]:
    return {"event": event, "Server": {"title": "Fake Plex", "uuid": server or fake.machine_identifier},
            "Metadata": {"ratingKey": rating_key, "type": "episode", "title": "Two", "librarySectionID": section}}


def test_plex_library_new_webhook_queues_the_episode(dash: Dashboard, fake: FakePlex, tmp_path: Path) -> None:
    nas = tmp_path / "nas"
    materialize(fake, nas)
    _link(dash, fake)
    library = dash.api("POST", "/api/plex/libraries", json={"section_key": "2", "path_mappings": mappings(nas)})
    library_id = library.get_json()["id"]
    key = _webhook_key(dash)
    client = dash.client()

    def post(payload: dict[str, Any]) -> Any:
        body, content_type = _plex_multipart(payload)
        return client.post(f"/api/webhooks/plex?apikey={key}", data=body, content_type=content_type)

    _control_messages(dash)
    queued = post(_plex_event(fake))
    assert queued.status_code == 202, queued.get_json()
    assert queued.get_json()["queued"][0]["library_id"] == library_id
    assert _control_messages(dash) == [(names.PLEX_INGEST, [library_id, [], "612", "plex"])]
    post(_plex_event(fake))
    [result] = _run_ingests(dash)
    assert result["jobs"] == 1 and result["decided_from_plex"] == 1 and result["probed"] == 0
    with session_scope(dash.engine) as session:
        jobs = list(session.scalars(select(Job)))
    assert [job.path for job in jobs] == ["/data/tv/Show B/Season 01/Show B - S01E02.mp4"]
    assert jobs[0].status == "queued"
    assert dash.control_messages() >= 1  # a dispatch was asked for

    for payload, reason in ((_plex_event(fake, event="media.play"), "is not library.new"),
                            (_plex_event(fake, server="someone-else"), "not the linked one"),
                            (_plex_event(fake, section=1), "section 1 is not managed")):
        ignored = post(payload)
        assert ignored.status_code == 200 and reason in ignored.get_json()["reason"], ignored.get_json()
    garbage = client.post(f"/api/webhooks/plex?apikey={key}", data=b"--x\r\n",
                          content_type="multipart/form-data; boundary=x")
    assert garbage.status_code == 400 and garbage.get_json()["error"]["code"] == "invalid_webhook"
    assert client.post(f"/api/webhooks/plex?apikey={key}", data=b"{not json",
                       content_type="application/json").status_code == 400


def test_sonarr_and_radarr_imports_queue_the_file_in_the_matching_library(
        dash: Dashboard, fake: FakePlex, tmp_path: Path, h264_clip: Path) -> None:
    nas = tmp_path / "nas"
    materialize(fake, nas)
    _link(dash, fake)
    # Sonarr sees the TV share as /tv; the Plex library is told so with a mapping for "sonarr".
    tv = dash.api("POST", "/api/plex/libraries", json={
        "section_key": "2", "path_mappings": [*mappings(nas), {"from": "/data/tv", "to": "/tv", "node": "sonarr"}]})
    tv_id = tv.get_json()["id"]
    folder = tmp_path / "films"
    folder_id = dash.library(folder, name="Films")
    episode = "/data/tv/Show C/Season 01/Show C - S01E01.mkv"
    local_path(nas, episode).parent.mkdir(parents=True)
    shutil.copy2(h264_clip, local_path(nas, episode))
    (folder / "Foxtrot (2006)").mkdir()
    shutil.copy2(h264_clip, folder / "Foxtrot (2006)" / "Foxtrot.mkv")
    key = {"X-API-Key": _webhook_key(dash)}
    client = dash.client()
    _control_messages(dash)

    sonarr = {"eventType": "Download", "isUpgrade": False, "series": {"title": "Show C", "path": "/tv/Show C"},
              "episodeFile": {"relativePath": "Season 01/Show C - S01E01.mkv"}}
    answer = client.post("/api/webhooks/sonarr", json=sonarr, headers=key)
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["queued"] == [{"library_id": tv_id, "library": "TV Shows", "paths": [episode]}]
    radarr = {"eventType": "Download", "movie": {"title": "Foxtrot", "folderPath": str(folder / "Foxtrot (2006)")},
              "movieFile": {"relativePath": "Foxtrot.mkv", "path": str(folder / "Foxtrot (2006)" / "Foxtrot.mkv")}}
    assert client.post("/api/webhooks/radarr", json=radarr, headers=key).status_code == 202
    results = _run_ingests(dash)
    assert [(r["source"], r["probed"], r["jobs"]) for r in results] == [("sonarr", 1, 1), ("radarr", 1, 1)]
    with session_scope(dash.engine) as session:
        jobs = {job.path: job.library_id for job in session.scalars(select(Job))}
        states = {m.path: m.state for m in session.scalars(select(MediaFile))}
    assert jobs == {episode: tv_id, str(folder / "Foxtrot (2006)" / "Foxtrot.mkv"): folder_id}
    assert set(states.values()) == {"queued"}

    outside = {**radarr, "movieFile": {"path": "/somewhere/else/Golf.mkv"}}
    ignored = client.post("/api/webhooks/radarr", json=outside, headers=key)
    assert ignored.status_code == 200 and "outside every library" in ignored.get_json()["reason"]
    sneaky = {**radarr, "movieFile": {"path": str(folder / ".." / ".." / "etc" / "passwd")}}
    assert client.post("/api/webhooks/radarr", json=sneaky, headers=key).get_json()["ignored"] is True
    grab = client.post("/api/webhooks/sonarr", json={**sonarr, "eventType": "Grab"}, headers=key)
    assert grab.status_code == 200 and "not an import" in grab.get_json()["reason"]
    unreadable = client.post("/api/webhooks/sonarr", data=b"[1, 2", content_type="application/json", headers=key)
    assert unreadable.status_code == 400
    assert [task for task, _args in _control_messages(dash) if task == names.PLEX_INGEST] == []


def test_a_blank_token_is_reused_only_for_the_same_scheme_host_and_port(dash: Dashboard, fake: FakePlex) -> None:
    _link(dash, fake)
    other = FakePlex(machine_identifier="attacker-machine", token=fake.token)
    with other:
        for url in (other.url, f"http://localhost:{fake.port}", f"https://127.0.0.1:{fake.port}"):
            moved = dash.api("POST", "/api/plex/link", json={"url": url, "token": "", "timeout": 2})
            assert moved.status_code == 400, url
            error = moved.get_json()["error"]
            assert error["code"] == "plex_config" and error["field"] == "token" and "typed again" in error["message"]
        assert other.requests == []  # the stored token never left for the other server
    assert _settings(dash)["plex_url"] == fake.url
    # Same scheme, host and port: the path, TLS choice or timeout change without the token.
    kept = dash.api("POST", "/api/plex/link", json={"url": fake.url + "/", "token": "", "timeout": 7})
    assert kept.status_code == 200 and _settings(dash)["plex_timeout"] == 7
    # Typing the token moves the link anywhere (after the identity check).
    with FakePlex(machine_identifier="second-machine", token="second-token") as second:
        moved = dash.api("POST", "/api/plex/link", json={"url": second.url, "token": "second-token"})
        assert moved.status_code == 200 and moved.get_json()["replaced_server"] == fake.machine_identifier


def test_the_link_settings_change_only_through_the_link(dash: Dashboard, fake: FakePlex) -> None:
    _link(dash, fake)
    for key, value in (("plex_url", "http://attacker:32400"), ("plex_machine_identifier", "other"),
                       ("plex_token", "stolen")):
        refused = dash.api("PATCH", "/api/settings", json={"values": {"max_attempts": 5, key: value}})
        assert refused.status_code == 400, key
        assert refused.get_json()["error"]["field"] == f"values.{key}"
        assert "Plex" in refused.get_json()["error"]["message"]
    values = _settings(dash)
    assert (values["plex_url"], values["plex_token"], values["max_attempts"]) == (fake.url, fake.token, 3)
    schema = dash.api("GET", "/api/settings/schema").get_json()["groups"]["Plex"]
    assert {item["key"] for item in schema if item["managed"]} == {"plex_url", "plex_token",
                                                                  "plex_machine_identifier"}
    assert dash.api("PATCH", "/api/settings", json={"values": {"plex_timeout": 20}}).status_code == 200


def test_a_plex_webhook_with_a_large_thumbnail_is_read_but_other_bodies_are_limited(dash: Dashboard,
                                                                                     fake: FakePlex) -> None:
    key = _webhook_key(dash)
    files = {"payload": (None, json.dumps(_plex_event(fake, event="media.play"))),
             "thumb": ("thumb.jpg", b"\xff\xd8\xff\xe0" + b"j" * (5 * 1024 * 1024), "image/jpeg")}
    prepared = requests.Request("POST", "http://codecshift.local/", files=files).prepare()
    client = dash.client()
    answer = client.post(f"/api/webhooks/plex?apikey={key}", data=prepared.body,
                         content_type=prepared.headers["Content-Type"])
    assert answer.status_code == 200 and answer.get_json()["ignored"] is True
    too_big = client.post(f"/api/webhooks/sonarr?apikey={key}", data=b"{" + b" " * (5 * 1024 * 1024) + b"}",
                          content_type="application/json")
    assert too_big.status_code == 413 and too_big.get_json()["error"]["code"] == "request_entity_too_large"
