"""The dashboard in headless Chromium against a real cluster: PostgreSQL, Redis, a control
worker, beat and one CPU worker running ffmpeg. Sign in, add a folder library of generated
clips, scan it, watch the encode's progress bar move and finish without reloading, see the
space saved on the overview and in the history chart, pause and resume the node. Every page
is saved as a screenshot under test-artifacts/dashboard/."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.browser import browser_page, screenshot
from support.cluster import Cluster, running_cluster, wait_for
from support.media import make_clip
from support.services import fresh_postgres_database

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "browser-test-password"


@pytest.fixture
def pg() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def _create_admin(cluster: Cluster) -> None:
    result = subprocess.run([sys.executable, "-m", "codecshift.cli.main", "user", "create", "admin", "--admin",
                             "--password-stdin"], input=PASSWORD + "\n", env=cluster.env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def _progress_values(page: object, seen: set[float], timeout: float) -> None:
    """Record the values the node card's progress bar shows until the encode leaves the card."""
    deadline = time.monotonic() + timeout
    appeared = False
    while time.monotonic() < deadline:
        values = page.eval_on_selector_all(  # type: ignore[attr-defined]
            '[data-testid="node-card"] progress[data-testid="job-progress"]', "els => els.map(e => e.value)")
        if values:
            appeared = True
            seen.update(float(v) for v in values)
        elif appeared:
            return
        time.sleep(0.15)


def test_dashboard_end_to_end_in_chromium(tmp_path: Path, pg: str) -> None:
    media = tmp_path / "media"
    make_clip(media / "Big Buck Test (2024).mkv", duration=6, size="320x180")
    with running_cluster(tmp_path, pg, settings={"dispatch_interval_seconds": 1}) as cluster:
        _create_admin(cluster)
        cluster.start_control()
        cluster.start_beat()
        cluster.start_worker("cpu-1", encoders="libx265")
        with browser_page(cluster.url, artifacts="dashboard") as page:
            page.on("dialog", lambda dialog: dialog.accept())
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # Sign in.
            page.goto("/")
            assert "/login" in page.url
            screenshot(page, "01-sign-in")
            page.fill('input[name="username"]', "admin")
            page.fill('input[name="password"]', PASSWORD)
            page.click('button[type="submit"]')
            page.wait_for_selector('[data-testid="node-card"][data-node="cpu-1"]')
            screenshot(page, "02-overview-idle")

            # Add a folder library with a slow preset, scanned on save.
            page.click('nav.mainnav a:has-text("Libraries")')
            page.click('[data-testid="add-library"]')
            page.fill("#f-name", "Test movies")
            page.fill("#f-roots", str(media))
            page.select_option("#f-profile-preset_cpu_hevc", "slower")
            screenshot(page, "03-library-new")
            page.click('[data-testid="save-library"]')
            page.wait_for_selector('[data-testid="scan-status"][data-status="done"]', timeout=60_000)
            assert "Test movies" in page.inner_text("h1")
            screenshot(page, "04-library-scanned")

            # Watch the encode on the overview: the bar moves and the card empties, no reload.
            page.goto("/")
            page.wait_for_selector('[data-testid="node-job"]', timeout=60_000)
            seen: set[float] = set()
            page.wait_for_function("() => [...document.querySelectorAll('[data-testid=job-progress]')]"
                                   ".some(e => e.value > 0)", timeout=60_000)
            screenshot(page, "05-overview-encoding")
            _progress_values(page, seen, timeout=90)
            moving = sorted(v for v in seen if 0 < v < 100)
            assert len(moving) >= 2, f"the progress bar did not move: {sorted(seen)}"
            cluster.wait_jobs(lambda jobs: jobs[0].status == "done", 60, "the job done")
            page.wait_for_function("() => document.querySelector('[data-testid=space-saved-value]')"
                                   ".textContent.trim() !== '0 B'", timeout=20_000)
            saved_text = page.inner_text('[data-testid="space-saved-value"]')
            assert saved_text.endswith(("KiB", "MiB")), saved_text
            assert page.inner_text('[data-testid="count-done"] .tile-value') == "1"
            screenshot(page, "06-overview-done")

            # The history chart shows today's saving.
            page.goto("/history?range=7")
            heights = page.eval_on_selector_all('[data-testid="chart-bar"]',
                                                "els => els.map(e => parseFloat(e.getAttribute('height')))")
            assert len(heights) == 7 and heights[-1] > 0 and not any(heights[:-1])
            assert "Big Buck Test" in page.inner_text('[data-testid="history-table"]')
            assert "cpu-1" in page.inner_text('[data-testid="by-node"]')
            screenshot(page, "07-history")

            # Pause and resume the node from its card.
            page.goto("/nodes")
            card = page.locator('[data-testid="node-card"][data-node="cpu-1"]')
            card.locator('[data-testid="node-pause"]').click()
            card.locator('[data-testid="node-resume"]').wait_for(timeout=15_000)
            wait_for(lambda: cluster.api("GET", "/api/nodes/cpu-1").json()["desired_state"] == "paused", 15,
                     message="node paused")
            wait_for(lambda: card.locator('[data-testid="node-status"]').inner_text().strip() == "paused", 15,
                     message="the card shows paused")
            screenshot(page, "08-nodes-paused")
            card.locator('[data-testid="node-resume"]').click()
            card.locator('[data-testid="node-pause"]').wait_for(timeout=15_000)
            wait_for(lambda: cluster.api("GET", "/api/nodes/cpu-1").json()["desired_state"] == "running", 15,
                     message="node running")
            screenshot(page, "09-nodes-resumed")

            assert errors == [], errors
            # A bad setting is refused (400) with the reason beside the field.
            page.goto("/settings")
            page.fill("#f-min_file_size_mb", "lots")
            page.click('[data-testid="save-settings"]')
            page.wait_for_selector('[data-testid="error-min_file_size_mb"]')
            assert "whole number" in page.inner_text('[data-testid="error-min_file_size_mb"]')
            screenshot(page, "10-settings-refused")
            assert [e for e in errors if "400" not in e] == [], errors
            errors.clear()

            for name, path in (("11-jobs", "/jobs"), ("12-job", "/jobs/1"), ("13-failures", "/failures"),
                               ("14-libraries", "/libraries"), ("15-library-files", "/libraries/1/files"),
                               ("16-settings", "/settings")):
                assert page.goto(path).status == 200, path
                screenshot(page, name)
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto("/")
            screenshot(page, "17-overview-phone")
            page.goto("/jobs")
            screenshot(page, "18-jobs-phone")
            assert errors == [], errors


def test_bulk_actions_work_under_a_sub_path_in_chromium(tmp_path: Path, pg: str) -> None:
    """Behind a proxy that serves the dashboard at /cs (X-Forwarded-Prefix), the script calls the
    API at the addresses the page gives it: a selection is cancelled, a filter-wide action is
    started and its operation polled, all under /cs."""
    import threading

    from sqlalchemy import select
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response

    from codecshift.db import session_scope
    from codecshift.models import Job
    from support.dashboard_app import dashboard_app

    with dashboard_app(pg, tmp_path, auth=False) as dash:
        library = dash.library(tmp_path / "movies")
        ids = [dash.job(str(tmp_path / "movies" / f"m{n}.mkv"), "queued", library) for n in range(3)]
        outside = DispatcherMiddleware(Response("not under /cs", status=404), {"/cs": dash.app})
        server = make_server("127.0.0.1", 0, outside, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with browser_page(f"http://127.0.0.1:{server.server_port}", artifacts="subpath") as page:
                requested: list[str] = []
                page.on("request", lambda r: requested.append(r.url))
                page.on("dialog", lambda dialog: dialog.accept())
                page.goto("/cs/jobs?per_page=2")
                page.check(f'input[name="ids"][value="{ids[-1]}"]')
                page.click('[data-testid="bulkbar"] [data-bulk-action="cancel"]')
                page.wait_for_selector(".toast-ok")
                with session_scope(dash.engine) as session:
                    assert session.get(Job, ids[-1]).status == "cancelled"
                page.goto("/cs/jobs?per_page=1&status=queued")
                page.click('[data-testid="filterbar"] [data-filter-action="move_to_top"]')
                page.wait_for_function("() => document.querySelector('.toast-ok')")
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not any("/cs/api/operations/" in u for u in requested):
                    time.sleep(0.1)
                screenshot(page, "jobs-under-a-sub-path")
            api_calls = [url for url in requested if "/api/" in url]
            assert api_calls and all("/cs/api/" in url for url in api_calls), api_calls
            assert any(url.endswith("/cs/api/jobs/actions") for url in api_calls)
            assert any("/cs/api/operations/" in url for url in api_calls)
            with session_scope(dash.engine) as session:
                assert len(list(session.scalars(select(Job).where(Job.status == "queued")))) == 2
        finally:
            server.shutdown()
            thread.join(timeout=5)
