"""How a transcode node talks to the dashboard: its API, with its API key.

Nodes hold no database credentials (DESIGN.md §1). Every call has a timeout;
results are retried until the dashboard takes them, because losing one would
leave a replaced file recorded as running.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

log = logging.getLogger(__name__)


class DashboardError(RuntimeError):
    """The dashboard refused a call or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NodeClient:
    def __init__(self, base_url: str, api_key: str, node_name: str, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.node_name = node_name
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers.update({"X-API-Key": api_key, "User-Agent": f"codecshift-node/{node_name}"})

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        try:
            response = self.http.request(method, self.base_url + path, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise DashboardError(f"cannot reach the dashboard at {self.base_url}: {exc}") from None
        try:
            data = response.json()
        except ValueError:
            data = {"error": {"message": response.text[:200]}}
        if response.status_code in (401, 403):
            message = data.get("error", {}).get("message", "refused")
            raise DashboardError(f"the dashboard refused this node's API key: {message}", response.status_code)
        if response.status_code >= 500:
            raise DashboardError(f"the dashboard failed ({response.status_code})", response.status_code)
        return response.status_code, data

    def register(self, payload: dict[str, Any]) -> dict[str, Any]:
        status, data = self._call("POST", "/api/nodes/register", payload)
        if status != 200:
            raise DashboardError(data.get("error", {}).get("message", f"registration failed ({status})"), status)
        return data

    def settings(self) -> dict[str, Any]:
        """The cluster's behaviour settings (secrets are never sent to nodes)."""
        status, data = self._call("GET", "/api/settings")
        if status != 200:
            raise DashboardError(data.get("error", {}).get("message", f"settings refused ({status})"), status)
        return data.get("settings", {})

    def heartbeat(self, status_text: str, current_jobs: list[dict[str, int]]) -> dict[str, Any] | None:
        """The dashboard's answer, or None when it no longer knows this node."""
        status, data = self._call("POST", f"/api/nodes/{self.node_name}/heartbeat",
                                  {"status": status_text, "current_jobs": current_jobs})
        return data if status == 200 else None

    def claim(self, job_id: int, attempt: int) -> dict[str, Any] | None:
        """The job's specification, or None when it is not claimable (acknowledge quietly)."""
        status, data = self._call("POST", f"/api/jobs/{job_id}/claim", {"node": self.node_name, "attempt": attempt})
        if status == 200:
            return data
        log.info("job %s attempt %s not claimed: %s", job_id, attempt, data.get("error", {}).get("message"))
        return None

    def progress(self, job_id: int, attempt: int, values: dict[str, Any]) -> bool:
        """Report progress; True when the job should be cancelled."""
        status, data = self._call("POST", f"/api/jobs/{job_id}/progress",
                                  {"node": self.node_name, "attempt": attempt, **values})
        return bool(data.get("cancel")) if status == 200 else True

    def journal(self, job_id: int, attempt: int, journal: dict[str, Any]) -> None:
        status, data = self._call("PUT", f"/api/jobs/{job_id}/journal",
                                  {"node": self.node_name, "attempt": attempt, "journal": journal})
        if status != 200:
            raise DashboardError(data.get("error", {}).get("message", "journal refused"), status)

    def result(self, job_id: int, attempt: int, outcome: dict[str, Any], *, give_up_after: float = 600.0) -> bool:
        """Deliver a result, retrying while the dashboard is unreachable."""
        deadline = time.monotonic() + give_up_after
        delay = 1.0
        while True:
            try:
                status, data = self._call("POST", f"/api/jobs/{job_id}/result",
                                          {"node": self.node_name, "attempt": attempt, **outcome})
                if status != 200:
                    log.warning("result of job %s refused: %s", job_id, data.get("error", {}).get("message"))
                return status == 200
            except DashboardError as exc:
                if exc.status in (401, 403) or time.monotonic() > deadline:
                    raise
                log.warning("result of job %s not delivered yet (%s); retrying in %.0fs", job_id, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def recovered(self, job_id: int, attempt: int, action: str, message: str) -> None:
        self._call("POST", f"/api/jobs/{job_id}/recovered",
                   {"node": self.node_name, "attempt": attempt, "action": action, "message": message})

    def replacing_jobs(self) -> list[dict[str, Any]]:
        status, data = self._call("GET", f"/api/nodes/{self.node_name}/replacing")
        return data.get("jobs", []) if status == 200 else []
