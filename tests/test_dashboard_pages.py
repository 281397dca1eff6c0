"""The dashboard's pages, server-rendered: who sees what, forms that refuse bad values beside
the field, live fragments with ETags, and markup that a strict CSP allows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from codecshift import settings_store
from codecshift.db import session_scope
from codecshift.models import Library, ScanRun
from codecshift.version import read_version
from support.dashboard_app import Dashboard, csrf_from, dashboard_app

PAGES = ["/", "/jobs", "/failures", "/history", "/libraries", "/nodes", "/settings"]


@pytest.fixture
def dash(database_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    """Both databases: SQLite is what `codecshift up` runs on."""
    with dashboard_app(database_url, tmp_path) as dashboard:
        yield dashboard


def _seed(dash: Dashboard, tmp_path: Path) -> int:
    library = dash.library(tmp_path / "movies")
    dash.node("node-a")
    dash.node("node-old", version="0.0.1")
    dash.job(str(tmp_path / "movies" / "Running.mkv"), "running", library, node="node-a", queue="cpu",
             progress=42.0, fps=24.0, eta_seconds=90.0, stage="encoding")
    dash.job(str(tmp_path / "movies" / "Broken.mkv"), "failed", library, error="decode error at 00:01",
             log_tail="frame=1\nerror: broken")
    dash.history(2, size_before=4_000_000, size_after=1_000_000, library_id=library)
    return library


def test_pages_need_sign_in_and_show_the_version(dash: Dashboard, tmp_path: Path) -> None:
    library = _seed(dash, tmp_path)
    anonymous = dash.client()
    for page in PAGES:
        response = anonymous.get(page)
        assert response.status_code == 302 and "/login" in response.headers["Location"], page
    reader = dash.signed_in("reader", admin=False)
    for page in [*PAGES, f"/libraries/{library}", f"/libraries/{library}/files", "/jobs/1"]:
        response = reader.get(page)
        assert response.status_code == 200, page
        html = response.get_data(as_text=True)
        assert f'data-testid="version">{read_version()}<' in html, page
        assert "Content-Security-Policy" in response.headers
    assert reader.get("/libraries/new").status_code == 403


def test_no_inline_script_style_or_handlers(dash: Dashboard, tmp_path: Path) -> None:
    library = _seed(dash, tmp_path)
    admin = dash.signed_in()
    for page in [*PAGES, f"/libraries/{library}", "/libraries/new", "/jobs/1", "/?partial=1"]:
        html = admin.get(page).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page
        assert not re.search(r"\sstyle=", html), page
        assert not re.search(r"\son[a-z]+=", html), page
        assert "//cdn" not in html and "https://" not in html, page


def test_overview_shows_nodes_progress_mismatch_space_saved_and_failures(dash: Dashboard, tmp_path: Path) -> None:
    _seed(dash, tmp_path)
    html = dash.signed_in().get("/").get_data(as_text=True)
    card = html[html.index('data-node="node-a"'):html.index('data-node="node-old"')]
    assert 'value="42.0"' in card and "Running.mkv" in card and "libx265" in card and "1m 30s" in card
    old = html[html.index('data-node="node-old"'):]
    assert "version-mismatch" in old and "version-mismatch" not in card
    assert "5.7 MiB" in html  # 2 x 3 MB saved
    assert "Broken.mkv" in html and "decode error" in html
    assert "queue-pause" in html


def test_live_fragments_answer_304_until_something_changes(dash: Dashboard, tmp_path: Path) -> None:
    _seed(dash, tmp_path)
    admin = dash.signed_in()
    for page in ("/?partial=1", "/jobs?partial=1", "/nodes?partial=1", "/libraries?partial=1",
                 "/history?partial=1", "/failures?partial=1"):
        first = admin.get(page)
        assert first.status_code == 200 and "<html" not in first.get_data(as_text=True), page
        assert admin.get(page, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304, page
    etag = admin.get("/?partial=1").headers["ETag"]
    dash.api("POST", "/api/queue/pause")
    changed = admin.get("/?partial=1", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and "queue-paused" in changed.get_data(as_text=True)


def test_jobs_page_filters_and_refuses_paths_outside_libraries(dash: Dashboard, tmp_path: Path) -> None:
    _seed(dash, tmp_path)
    admin = dash.signed_in()
    failed = admin.get("/jobs?status=failed").get_data(as_text=True)
    assert "Broken.mkv" in failed and "Running.mkv" not in failed
    assert 'data-api="/api/jobs/2/requeue"' in failed
    outside = admin.get("/jobs?path=/etc")
    assert outside.status_code == 400 and "outside every library" in outside.get_data(as_text=True)
    bad = admin.get("/jobs?status=sleeping")
    assert bad.status_code == 200 and "status:" in bad.get_data(as_text=True)
    reader = dash.signed_in("reader", admin=False).get("/jobs").get_data(as_text=True)
    assert "data-bulk-action" not in reader and "/requeue" not in reader


def test_failures_page_shows_reason_and_log_tail(dash: Dashboard, tmp_path: Path) -> None:
    _seed(dash, tmp_path)
    html = dash.signed_in().get("/failures").get_data(as_text=True)
    assert "decode error at 00:01" in html and "error: broken" in html and "failure-requeue" in html


def test_history_page_draws_the_chart_and_summaries(dash: Dashboard, tmp_path: Path) -> None:
    _seed(dash, tmp_path)
    html = dash.signed_in().get("/history?range=7").get_data(as_text=True)
    assert html.count('data-testid="chart-bar"') == 7 and 'data-testid="chart-line"' in html
    assert 'data-testid="by-node"' in html and "node-a" in html and "Movies" in html
    assert "5.7 MiB" in html


def test_settings_refuse_bad_values_beside_the_field_and_save_good_ones(dash: Dashboard) -> None:
    admin = dash.signed_in()
    page = admin.get("/settings").get_data(as_text=True)
    token = csrf_from(page)
    for key in ("min_file_size_mb", "quality_cpu_hevc_hd", "plex_token", "notify_urls"):
        assert f'id="field-{key}"' in page
    form = _settings_form(dash)
    refused = admin.post("/settings", data={**form, "csrf_token": token, "min_file_size_mb": "lots",
                                            "min_saving_percent": "99", "max_attempts": "5"})
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    field = html[html.index('id="field-min_file_size_mb"'):]
    assert "must be a whole number" in field[:field.index('class="help"')]
    assert "must be at most 95" in html and 'value="lots"' in html
    with session_scope(dash.engine) as session:
        assert settings_store.get(session, "max_attempts") == 3  # nothing saved

    saved = admin.post("/settings", data={**form, "csrf_token": token, "max_attempts": "5",
                                          "notify_urls": "json://secret-token@example.com"})
    assert saved.status_code == 302
    with session_scope(dash.engine) as session:
        assert settings_store.get(session, "max_attempts") == 5
        assert settings_store.get(session, "notify_urls") == ["json://secret-token@example.com"]
    page = admin.get("/settings").get_data(as_text=True)
    assert "secret-token" not in page and "Saved: max_attempts, notify_urls." in page
    assert admin.post("/settings", data={**form, "max_attempts": "6"}).status_code == 400  # no CSRF token

    # Someone pauses the queue while this page is open; saving another field keeps it paused.
    stale = _settings_form(dash)
    dash.api("POST", "/api/queue/pause")
    assert admin.post("/settings", data={**stale, "csrf_token": token, "max_attempts": "7"}).status_code == 302
    with session_scope(dash.engine) as session:
        assert settings_store.get(session, "queue_paused") is True
        assert settings_store.get(session, "max_attempts") == 7
    reader = dash.signed_in("reader", admin=False)
    assert reader.post("/settings", data={**form, "csrf_token": csrf_from(reader.get("/settings").get_data(
        as_text=True)), "max_attempts": "6"}).status_code == 403


def _settings_form(dash: Dashboard) -> dict[str, str]:
    """Every field as the page submits it."""
    from codecshift import registry

    with session_scope(dash.engine) as session:
        values = settings_store.load_all(session)
    form = {}
    for setting in registry.iter_settings():
        value = values[setting.key]
        if setting.managed:
            continue  # shown read-only: not part of the form
        if setting.secret:
            form[setting.key] = ""
            continue
        if setting.type == "bool":
            form[setting.key] = "true" if value else "false"
        elif setting.type == "list":
            form[setting.key] = ", ".join(value)
        else:
            form[setting.key] = str(value)
        form[f"orig__{setting.key}"] = form[setting.key]
    return form


def test_add_a_folder_library_with_profile_mappings_and_a_scan(dash: Dashboard, tmp_path: Path) -> None:
    root = tmp_path / "movies"
    root.mkdir()
    admin = dash.signed_in()
    token = csrf_from(admin.get("/libraries/new").get_data(as_text=True))
    form = {"csrf_token": token, "name": "Movies", "roots": str(tmp_path / "missing"), "enabled": ["false", "true"],
            "rescan_interval_minutes": "abc", "path_mappings": "/a => b", "profile.target_codec": "av1",
            "profile.min_saving_percent": "120", "scan_now": ["false", "true"]}
    refused = admin.post("/libraries/new", data=form)
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "is not a folder the control worker can read" in html
    assert 'data-testid="error-rescan_interval_minutes"' in html
    assert 'data-testid="error-path_mappings"' in html
    assert "line 1: mapping 1 (&#39;/a&#39; -&gt; &#39;b&#39;): &#39;to&#39; must be an absolute path" in html
    assert 'data-testid="error-min_saving_percent"' in html and "must be at most 95" in html
    assert 'value="Movies"' in html  # what was typed stays
    with session_scope(dash.engine) as session:
        assert session.scalar(select(Library)) is None

    form.update(roots=f"{root}/", rescan_interval_minutes="90", path_mappings=f"{root} => /mnt/movies @ node-a",
                **{"profile.min_saving_percent": "20", "profile.done_codecs": "hevc, av1, vp9"})
    before = dash.control_messages("scan")
    created = admin.post("/libraries/new", data=form)
    assert created.status_code == 302, created.get_data(as_text=True)[:2000]
    with session_scope(dash.engine) as session:
        library = session.scalar(select(Library))
        assert library.roots == [str(root)] and library.rescan_interval_minutes == 90
        assert library.profile == {"target_codec": "av1", "min_saving_percent": 20,
                                   "done_codecs": ["hevc", "av1", "vp9"]}
        assert library.path_mappings == [{"from": str(root), "to": "/mnt/movies", "node": "node-a"}]
        assert session.scalar(select(ScanRun).where(ScanRun.library_id == library.id)) is not None
        library_id = library.id
    assert dash.control_messages("scan") == before + 1
    page = admin.get(created.headers["Location"]).get_data(as_text=True)
    assert "scanning it now" in page and 'data-testid="scan-status"' in page

    duplicate = admin.post("/libraries/new", data={**form, "scan_now": "false"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.get_data(as_text=True)
    edited = admin.post(f"/libraries/{library_id}", data={**form, "name": "Films", "profile.target_codec": "",
                                                          "scan_now": "false", "enabled": "false"})
    assert edited.status_code == 302
    with session_scope(dash.engine) as session:
        library = session.get(Library, library_id)
        assert library.name == "Films" and library.enabled is False and "target_codec" not in library.profile
    files = admin.get(f"/libraries/{library_id}/files?path=/etc")
    assert files.status_code == 400 and "outside this library" in files.get_data(as_text=True)
    deleted = admin.post(f"/libraries/{library_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302 and root.is_dir()
    assert admin.get(f"/libraries/{library_id}").status_code == 404


def test_nodes_page_offers_controls_to_admins_only(dash: Dashboard, tmp_path: Path) -> None:
    _seed(dash, tmp_path)
    admin = dash.signed_in().get("/nodes").get_data(as_text=True)
    assert 'data-testid="node-pause"' in admin and 'data-testid="node-quit"' in admin
    assert 'data-testid="node-cancel-job"' in admin and "libx265" in admin and "cpu 1" in admin
    dash.api("POST", "/api/nodes/node-a/control", json={"action": "pause"})
    paused = dash.signed_in().get("/nodes").get_data(as_text=True)
    card = paused[paused.index('data-node="node-a"'):paused.index('data-node="node-old"')]
    assert 'data-testid="node-resume"' in card and 'data-testid="node-pause"' not in card
    reader = dash.signed_in("reader", admin=False).get("/nodes").get_data(as_text=True)
    assert 'data-testid="node-resume"' not in reader and 'data-testid="node-quit"' not in reader
    assert "node-a" in reader


def test_authentication_off_shows_the_banner_and_opens_the_pages(postgres_url: str, tmp_path: Path) -> None:
    with dashboard_app(postgres_url, tmp_path, auth=False) as dash:
        for page in PAGES:
            response = dash.client().get(page)
            assert response.status_code == 200, page
            assert 'data-testid="auth-off"' in response.get_data(as_text=True)


def test_removing_a_library_on_its_page_cancels_waiting_jobs_or_says_why_not(dash: Dashboard,
                                                                             tmp_path: Path) -> None:
    from codecshift.models import Job

    library = _seed(dash, tmp_path)  # one running job
    waiting = dash.job(str(tmp_path / "movies" / "Next.mkv"), "queued", library)
    admin = dash.signed_in()
    page = admin.get(f"/libraries/{library}").get_data(as_text=True)
    assert "queued jobs and jobs awaiting approval are cancelled" in page
    refused = admin.post(f"/libraries/{library}/delete", data={"csrf_token": csrf_from(page)},
                         follow_redirects=True)
    html = refused.get_data(as_text=True)
    assert "Not removed: library &#39;Movies&#39; cannot be removed while 1 of its job is running" in html
    with session_scope(dash.engine) as session:
        assert session.get(Library, library) is not None
        assert session.get(Job, waiting).status == "queued"
        for job in session.scalars(select(Job).where(Job.status == "running")):
            job.status = "failed"
    removed = admin.post(f"/libraries/{library}/delete", data={"csrf_token": csrf_from(page)},
                         follow_redirects=True)
    assert "1 waiting job was cancelled" in removed.get_data(as_text=True)
    with session_scope(dash.engine) as session:
        assert session.get(Library, library) is None
        assert session.get(Job, waiting).status == "cancelled"


def test_library_form_checks_mappings_and_roots_like_the_api(dash: Dashboard, tmp_path: Path) -> None:
    root = tmp_path / "movies"
    root.mkdir()
    admin = dash.signed_in()
    token = csrf_from(admin.get("/libraries/new").get_data(as_text=True))
    base = {"csrf_token": token, "name": "Movies", "roots": str(root), "enabled": "true"}
    for extra, message in (
            ({"path_mappings": "/data/../etc => /mnt"}, "line 1: mapping 1"),
            ({"path_mappings": "/data => /mnt/a\n\n/data/ => /mnt/b"}, "line 3: mapping 2"),
            ({"roots": "/"}, "cannot be a library folder"),
            ({"roots": f"{root}/../movies"}, "must not contain"),
            ({"name": "Mo\x00vies"}, "NUL character")):
        refused = admin.post("/libraries/new", data={**base, **extra})
        assert refused.status_code == 400, extra
        assert message in refused.get_data(as_text=True), extra
    with session_scope(dash.engine) as session:
        assert session.scalar(select(Library)) is None
    created = admin.post("/libraries/new", data={**base, "roots": f"{tmp_path}//movies/./",
                                                 "path_mappings": "D:\\Media\\ => /mnt/media/"})
    assert created.status_code == 302, created.get_data(as_text=True)[:2000]
    with session_scope(dash.engine) as session:
        library = session.scalar(select(Library))
        assert library.roots == [str(root)]
        assert library.path_mappings == [{"from": "D:\\Media", "to": "/mnt/media", "node": None}]


def test_query_arguments_for_url_for_and_nul_characters_do_not_break_pages(dash: Dashboard,
                                                                            tmp_path: Path) -> None:
    library = _seed(dash, tmp_path)
    admin = dash.signed_in()
    for page in (*PAGES, f"/libraries/{library}", f"/libraries/{library}/files"):
        for args in ("_method=PUT", "_anchor=x&_external=1&_scheme=ftp"):
            response = admin.get(f"{page}?{args}")
            assert response.status_code == 200, (page, args)
            assert "_method" not in response.get_data(as_text=True)
    for url in ("/jobs?q=a%00b", "/history?q=%00", "/failures?node=x%00", f"/libraries/{library}/files?q=%00",
                "/jobs?q%00=x"):
        response = admin.get(url)
        assert response.status_code == 400, url
        assert "NUL" in response.get_data(as_text=True)


def test_settings_page_shows_the_plex_link_read_only_and_refuses_changing_it(dash: Dashboard) -> None:
    with session_scope(dash.engine) as session:
        settings_store.set_many(session, {"plex_url": "http://plex.lan:32400", "plex_token": "tok",
                                          "plex_machine_identifier": "machine-1"})
    admin = dash.signed_in()
    page = admin.get("/settings").get_data(as_text=True)
    for key in ("plex_url", "plex_token", "plex_machine_identifier"):
        assert f'data-testid="managed-{key}"' in page and f'name="{key}"' not in page
    assert 'value="http://plex.lan:32400" readonly' in page and "tok" not in page.replace("token", "")
    form = {**_settings_form(dash), "csrf_token": csrf_from(page)}
    for key, value in (("plex_url", "http://attacker:32400"), ("plex_machine_identifier", "other"),
                       ("plex_token", "stolen")):
        refused = admin.post("/settings", data={**form, key: value})
        assert refused.status_code == 400, key
        assert f'data-testid="error-{key}"' in refused.get_data(as_text=True)
    assert admin.post("/settings", data={**form, "clear__plex_token": "1"}).status_code == 400
    with session_scope(dash.engine) as session:
        values = settings_store.load_all(session)
    assert (values["plex_url"], values["plex_token"], values["plex_machine_identifier"]) == \
        ("http://plex.lan:32400", "tok", "machine-1")
    assert admin.post("/settings", data={**form, "max_attempts": "4"}).status_code == 302


def test_the_script_takes_every_api_address_from_the_page(dash: Dashboard, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    script = (root / "web" / "static" / "js" / "app.js").read_text(encoding="utf-8")
    assert not re.findall(r"[\"']/api", script), "app.js must not hard-code API addresses"
    _seed(dash, tmp_path)
    admin = dash.signed_in()
    html = admin.get("/jobs", base_url="http://localhost/codecshift").get_data(as_text=True)
    assert 'data-job-actions-url="/codecshift/api/jobs/actions"' in html
    assert 'data-operations-url="/codecshift/api/operations/"' in html
    live = re.search(r'data-live="([^"]+)"', html)
    assert live and live.group(1).startswith("/codecshift/jobs")
