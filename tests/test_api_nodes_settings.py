"""Nodes (register, heartbeat, list, control) and behaviour settings over the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codecshift import registry
from codecshift.version import read_version
from support.dashboard_app import Dashboard, dashboard_app, error_of

REGISTRATION = {"name": "node-a", "hostname": "box", "version": "0.0.1", "queues": ["cpu"],
                "concurrency": {"cpu": 1}, "capabilities": {"families": {"cpu": ["hevc"]}}}


@pytest.fixture
def dash(postgres_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard_app(postgres_url, tmp_path) as dashboard:
        yield dashboard


def test_register_heartbeat_list_and_control(dash: Dashboard) -> None:
    key = dash.node_key
    answer = dash.api("POST", "/api/nodes/register", key=key, json=REGISTRATION).get_json()
    assert answer["dashboard_version"] == read_version() and answer["node"]["version_mismatch"] is True
    assert "plex_token" not in answer["settings"]  # no secret reaches a node
    beat = dash.api("POST", "/api/nodes/node-a/heartbeat", key=key, json={"current_jobs": []})
    assert beat.status_code == 200 and beat.get_json()["desired_state"] == "running"
    [node] = dash.api("GET", "/api/nodes").get_json()["items"]
    assert node["name"] == "node-a" and node["status"] == "online" and node["queues"] == ["cpu"]
    assert dash.api("GET", "/api/nodes/node-a").get_json()["hostname"] == "box"

    paused = dash.api("POST", "/api/nodes/node-a/control", json={"action": "pause"})
    assert paused.status_code == 202 and paused.get_json()["desired_state"] == "paused"
    beat = dash.api("POST", "/api/nodes/node-a/heartbeat", key=key, json={"current_jobs": []}).get_json()
    assert beat["desired_state"] == "paused" and beat["node"]["status"] == "paused"
    assert dash.api("POST", "/api/nodes/node-a/control", json={"action": "resume"}).get_json()["desired_state"] \
        == "running"
    # Draining a node that runs nothing leaves it paused at once.
    drained = dash.api("POST", "/api/nodes/node-a/control", json={"action": "drain"}).get_json()
    assert drained["desired_state"] == "paused" and drained["status"] == "paused"
    assert dash.api("POST", "/api/nodes/node-a/control", json={"action": "quit"}).get_json()["status"] == "stopping"


def test_node_endpoints_refuse_bad_input_unknown_nodes_and_wrong_roles(dash: Dashboard) -> None:
    key = dash.node_key
    for body, field in (({**REGISTRATION, "queues": ["gpu"]}, "queues.0"), ({**REGISTRATION, "name": ""}, "name"),
                        ({**REGISTRATION, "name": "bad name"}, "name"), ({**REGISTRATION, "queues": "cpu"}, "queues"),
                        ({k: v for k, v in REGISTRATION.items() if k != "version"}, "version"),
                        ({**REGISTRATION, "concurrency": {"cpu": "2"}}, "concurrency.cpu")):
        response = dash.api("POST", "/api/nodes/register", key=key, json=body)
        assert response.status_code == 400, body
        assert error_of(response)["field"] == field, body
    assert error_of(dash.api("POST", "/api/nodes/ghost/heartbeat", key=dash.admin_key, json={}))["code"] == "not_found"
    assert error_of(dash.api("POST", "/api/nodes/ghost/heartbeat", key=key, json={}))["code"] == "forbidden"
    assert dash.api("POST", "/api/nodes/ghost/heartbeat", key=key,
                    json={"current_jobs": [{"job_id": "1", "attempt": 1}]}).status_code == 400
    assert dash.api("GET", "/api/nodes/ghost").status_code == 404
    assert dash.api("POST", "/api/nodes/ghost/control", json={"action": "pause"}).status_code == 404
    dash.api("POST", "/api/nodes/register", key=key, json=REGISTRATION)
    assert error_of(dash.api("POST", "/api/nodes/node-a/control", json={"action": "reboot"}))["field"] == "action"
    assert error_of(dash.api("POST", "/api/nodes/node-a/control", json={}))["field"] == "action"
    assert dash.api("POST", "/api/nodes/node-a/control", key=key, json={"action": "pause"}).status_code == 403
    assert dash.api("GET", "/api/nodes", key=key).status_code == 403
    assert dash.api("POST", "/api/nodes/register", json=REGISTRATION).status_code == 200  # admin keys may too


def test_settings_read_schema_and_change(dash: Dashboard) -> None:
    values = dash.api("GET", "/api/settings").get_json()["settings"]
    assert set(values) == set(registry.REGISTRY)
    assert values["plex_token"] == {"set": False}
    schema = dash.api("GET", "/api/settings/schema").get_json()["groups"]
    keys = [item["key"] for items in schema.values() for item in items]
    assert sorted(keys) == sorted(registry.REGISTRY)
    assert all(item["help"] for items in schema.values() for item in items)

    changed = dash.api("PATCH", "/api/settings", json={"values": {"min_file_size_mb": "120",
                                                                    "notify_urls": ["json://abc@example.com"]}})
    assert changed.status_code == 200
    body = changed.get_json()["settings"]
    assert body["min_file_size_mb"] == 120 and body["notify_urls"] == {"set": True}
    node_view = dash.api("GET", "/api/settings", key=dash.node_key).get_json()["settings"]
    assert "notify_urls" not in node_view and node_view["min_file_size_mb"] == 120


def test_settings_refuse_bad_values_and_change_nothing(dash: Dashboard) -> None:
    for values, field in (({"min_file_size_mb": "lots"}, "values.min_file_size_mb"),
                          ({"min_saving_percent": 99}, "values.min_saving_percent"),
                          ({"target_codec": "h266"}, "values.target_codec"),
                          ({"queue_paused": "maybe"}, "values.queue_paused"),
                          ({"colour": "red"}, "values.colour"),
                          ({"max_attempts": 5, "heartbeat_seconds": 0}, "values.heartbeat_seconds")):
        response = dash.api("PATCH", "/api/settings", json={"values": values})
        assert response.status_code == 400, values
        error = error_of(response)
        assert error["field"] == field and error["message"], values
    assert dash.api("GET", "/api/settings").get_json()["settings"]["max_attempts"] == 3  # nothing was saved
    assert error_of(dash.api("PATCH", "/api/settings", json={"values": {}}))["field"] == "values"
    assert error_of(dash.api("PATCH", "/api/settings", json={"values": []}))["field"] == "values"
    assert error_of(dash.api("PATCH", "/api/settings", json={}))["field"] == "values"
    assert dash.api("PATCH", "/api/settings", key=dash.node_key, json={"values": {"max_attempts": 4}}).status_code \
        == 403
    assert dash.api("GET", "/api/settings/schema", key=dash.node_key).status_code == 403
