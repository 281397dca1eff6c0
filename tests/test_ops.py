"""/metrics protected like the API, and Flower watching the real workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from codecshift.apikeys import create_key
from codecshift.db import session_scope
from support.auth_app import make_auth_app
from support.cluster import free_port, running_cluster, wait_for
from support.services import fresh_postgres_database


def test_metrics_need_a_key_with_the_metrics_role_or_a_session(sqlite_url: str, tmp_path: Path) -> None:
    auth = make_auth_app(tmp_path, sqlite_url)
    with session_scope(auth.engine) as session:
        scrape_key = create_key(session, "prometheus", "metrics").secret
    client = auth.client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": "cs_wrong_key"}).status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": auth.node_key}).status_code == 403
    for headers in ({"X-API-Key": scrape_key}, {"Authorization": f"Bearer {scrape_key}"},
                    {"X-API-Key": auth.admin_key}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 200
        names = {family.name for family in text_string_to_metric_families(response.get_data(as_text=True))}
        assert {"codecshift_jobs", "codecshift_bytes_saved", "codecshift_nodes", "codecshift_queue_depth"} <= names
    assert auth.signed_in().get("/metrics").status_code == 200
    # a metrics key reaches nothing else
    assert client.get("/api/jobs", headers={"X-API-Key": scrape_key}).status_code == 403


@pytest.mark.slow
def test_flower_sees_the_workers_and_a_finished_task(tmp_path: Path) -> None:
    from tasks import names
    from tasks.app import create_celery
    from tasks.publisher import CeleryPublisher

    with fresh_postgres_database() as url, running_cluster(tmp_path, url) as cluster:
        cluster.start_control()
        cluster.start_worker("w1")
        port = free_port()
        flower = cluster.spawn("flower", "flower", "--port", str(port),
                               extra_env={"CODECSHIFT_FLOWER_BASIC_AUTH": "watcher:s3cret"})
        base = f"http://127.0.0.1:{port}"

        def workers() -> dict | None:
            try:
                answer = requests.get(f"{base}/api/workers?refresh=1", auth=("watcher", "s3cret"), timeout=10)
            except requests.RequestException:
                return None
            data = answer.json() if answer.status_code == 200 else {}
            return data if "codecshift@w1" in data and any(n.startswith("control@") for n in data) else None

        wait_for(workers, 60, interval=1, message="Flower lists both workers")
        assert requests.get(f"{base}/api/workers", timeout=10).status_code == 401
        CeleryPublisher(create_celery(cluster.settings)).enqueue(names.DISPATCH)

        def finished_dispatch() -> bool:
            tasks = requests.get(f"{base}/api/tasks", auth=("watcher", "s3cret"), timeout=10).json()
            return any(t.get("name") == names.DISPATCH and t.get("state") == "SUCCESS" for t in tasks.values())

        wait_for(finished_dispatch, 60, interval=1, message="Flower saw a finished task")
        assert flower.poll() is None


def test_flower_refuses_to_start_open_when_auth_is_on(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "codecshift.cli.main", "flower"],
                            env={"PATH": "/usr/bin:/bin", "CODECSHIFT_DATA_DIR": str(tmp_path)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "CODECSHIFT_FLOWER_BASIC_AUTH" in result.stderr
