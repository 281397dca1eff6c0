"""The OpenAPI document matches the routes both ways, and every error has one shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.dashboard_app import Dashboard, dashboard_app, error_of

IGNORED = {"HEAD", "OPTIONS"}


@pytest.fixture
def dash(sqlite_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard_app(sqlite_url, tmp_path) as dashboard:
        yield dashboard


def _flask_routes(dash: Dashboard) -> set[tuple[str, str]]:
    routes = set()
    for rule in dash.app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule.rule)
        routes |= {(path, method.lower()) for method in rule.methods - IGNORED}
    return routes


def test_openapi_document_matches_the_url_map_both_ways(dash: Dashboard) -> None:
    response = dash.api("GET", "/api/openapi.json", key="")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    routes = _flask_routes(dash)
    assert routes - documented == set(), "routes missing from /api/openapi.json"
    assert documented - routes == set(), "documented operations without a route"
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            assert operation["summary"] and operation["operationId"], (path, method)
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == names, (path, method)
            assert any(code.startswith("2") for code in operation["responses"]), (path, method)
            if "requestBody" in operation:
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.split("/")[-1] in document["components"]["schemas"], (path, method)


def test_paged_lists_declare_page_and_per_page(dash: Dashboard) -> None:
    document = dash.api("GET", "/api/openapi.json", key="").get_json()
    lists = ["/api/jobs", "/api/history", "/api/failures", "/api/libraries/{library_id}/files",
             "/api/libraries/{library_id}/scans"]
    for path in lists:
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        assert {"page", "per_page"} <= names, path


def test_every_api_error_has_one_shape(dash: Dashboard) -> None:
    not_found = dash.api("GET", "/api/nothing-here")
    assert not_found.status_code == 404 and error_of(not_found)["code"] == "not_found"
    wrong_method = dash.api("DELETE", "/api/status")
    assert wrong_method.status_code == 405 and error_of(wrong_method)["code"] == "method_not_allowed"
    assert error_of(dash.api("GET", "/api/status", key=""))["code"] == "unauthorized"
    bad_json = dash.api("PATCH", "/api/settings", data=b"{", content_type="application/json")
    assert bad_json.status_code == 400 and error_of(bad_json)["code"] == "invalid_json"
    wrong_type = dash.api("GET", "/api/jobs?per_page=lots")
    error = error_of(wrong_type)
    assert error["code"] == "validation_error" and error["field"] == "per_page" and "per_page" in error["message"]
    assert dash.api("GET", "/api/health", key="").get_json() == {"ok": True}


def test_pages_answer_html_errors(dash: Dashboard) -> None:
    admin = dash.signed_in()
    missing = admin.get("/jobs/424242")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "Job 424242 does not exist" in missing.get_data(as_text=True)
    assert admin.get("/libraries/424242").status_code == 404
