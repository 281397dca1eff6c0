"""Job actions over many jobs: set-based for a selection, an operation for a whole filter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from codecshift.db import session_scope
from codecshift.models import BulkOperation, Job, JobEvent
from codecshift.services import job_actions, job_filters
from support.dashboard_app import Dashboard, dashboard_app, error_of


@pytest.fixture
def dash(database_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard_app(database_url, tmp_path) as dashboard:
        yield dashboard


def test_requeue_makes_at_most_one_job_per_file_live(dash: Dashboard, tmp_path: Path) -> None:
    library = dash.library(tmp_path / "m")
    first = dash.job(str(tmp_path / "m" / "a.mkv"), "failed", library)
    with session_scope(dash.engine) as session:
        media_id = session.get(Job, first).media_file_id
        older = Job(path=str(tmp_path / "m" / "a.mkv"), status="cancelled", library_id=library,
                    media_file_id=media_id)
        busy = Job(path=str(tmp_path / "m" / "b.mkv"), status="done", library_id=library)
        session.add_all([older, busy])
        session.flush()
        ids = [first, older.id, busy.id]
    with session_scope(dash.engine) as session:
        changed = job_actions.requeue(session, ids)
        assert changed == sorted([max(first, ids[1]), ids[2]])
        live = session.scalar(select(func.count()).select_from(Job).where(
            Job.media_file_id == media_id, Job.status == "queued"))
        assert live == 1
        assert session.scalar(select(func.count()).select_from(JobEvent).where(JobEvent.event == "requeued")) == 2


def test_filter_wide_operation_answers_202_and_runs_on_the_control_side(dash: Dashboard, tmp_path: Path) -> None:
    library = dash.library(tmp_path / "m")
    failed = [dash.job(str(tmp_path / "m" / f"f{i}.mkv"), "failed", library) for i in range(2500)]
    kept = dash.job(str(tmp_path / "m" / "done.mkv"), "done", library)
    response = dash.api("POST", "/api/jobs/actions", json={"action": "requeue", "filter": {"status": "failed"}})
    assert response.status_code == 202, response.get_data(as_text=True)
    operation = response.get_json()["operation"]
    assert operation["status"] == "queued" and operation["filter"]["status"] == "failed"
    assert dash.control_messages() >= 1, "the operation was handed to the control worker"
    with session_scope(dash.engine) as session:  # what the control worker's task runs
        job_actions.run_operation(session, operation["id"], job_filters.matching_ids)
    answer = dash.api("GET", f"/api/operations/{operation['id']}").get_json()
    assert (answer["status"], answer["total"], answer["changed"]) == ("done", 2500, 2500)
    with session_scope(dash.engine) as session:
        statuses = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        assert statuses == {"queued": 2500, "done": 1}
        assert session.get(Job, kept).status == "done"
        assert session.get(BulkOperation, operation["id"]).finished_at is not None
    assert failed


def test_filter_operation_validation(dash: Dashboard, tmp_path: Path) -> None:
    dash.library(tmp_path / "m")
    both = dash.api("POST", "/api/jobs/actions", json={"action": "cancel", "ids": [1], "filter": {}})
    assert both.status_code == 400 and error_of(both)["field"] == "ids"
    outside = dash.api("POST", "/api/jobs/actions", json={"action": "cancel", "filter": {"path": "/etc"}})
    assert outside.status_code == 400 and error_of(outside)["field"] == "path"
    wrong = dash.api("POST", "/api/jobs/actions", json={"action": "cancel", "filter": {"status": "sleeping"}})
    assert wrong.status_code == 400 and error_of(wrong)["field"] == "filter.status"
    assert dash.api("GET", "/api/operations/999").status_code == 404
    assert dash.api("POST", "/api/jobs/actions", json={"action": "cancel", "filter": {}},
                    key=dash.node_key).status_code == 403


def test_delete_skips_running_jobs_in_a_filter_but_refuses_them_in_a_selection(dash: Dashboard,
                                                                               tmp_path: Path) -> None:
    library = dash.library(tmp_path / "m")
    running = dash.job(str(tmp_path / "m" / "r.mkv"), "running", library, node="n")
    done = dash.job(str(tmp_path / "m" / "d.mkv"), "done", library)
    with session_scope(dash.engine) as session:
        with pytest.raises(job_actions.JobActionError, match="cancel it first"):
            job_actions.delete(session, [running, done])
        assert job_actions.delete(session, [running, done], strict=False) == [done]
        assert session.get(Job, running) is not None


def test_jobs_page_offers_the_filter_wide_actions_when_more_match_than_shown(dash: Dashboard,
                                                                             tmp_path: Path) -> None:
    library = dash.library(tmp_path / "m")
    for index in range(30):
        dash.job(str(tmp_path / "m" / f"f{index}.mkv"), "failed", library)
    client = dash.signed_in()
    page = client.get("/jobs?status=failed&per_page=25").get_data(as_text=True)
    assert 'data-testid="filterbar"' in page and "All 30 matching jobs" in page
    assert 'data-filter="{&#34;status&#34;: &#34;failed&#34;}"' in page
    assert 'data-testid="filterbar"' not in client.get("/jobs?status=failed&per_page=50").get_data(as_text=True)
