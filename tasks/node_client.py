"""How a transcode node talks to the dashboard: its API, with its API key.

Nodes hold no database credentials (DESIGN.md §1). A dashboard that is briefly
away (restarting, behind a proxy answering 502 or 404) must never cost an
encode: progress keeps the encode going unless the dashboard explicitly says
cancel; journal steps are retried before the node gives up on a swap; results
are retried and, if the dashboard stays away, kept in a spool folder on the
node and delivered by the heartbeat once it answers again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger(__name__)

JOURNAL_RETRY_SECONDS = 300.0
RESULT_RETRY_SECONDS = 120.0


class DashboardError(RuntimeError):
    """The dashboard refused a call or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def temporary(self) -> bool:
        """Unreachable, a 5xx, or a proxy's 404/429 while the dashboard restarts."""
        return self.status is None or self.status >= 500 or self.status in (404, 408, 429)


def _proxy_answer(status: int, data: Any) -> bool:
    """A 404/408/429 that did not come from the dashboard's API (whose errors carry a code):
    a reverse proxy answering while the dashboard restarts."""
    from_api = isinstance(data, dict) and isinstance(data.get("error"), dict) and "code" in data["error"]
    return status in (404, 408, 429) and not from_api


def _message(data: Any, fallback: str) -> str:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("message", fallback))
    return fallback


class NodeClient:
    def __init__(self, base_url: str, api_key: str, node_name: str, *, timeout: float = 15.0,
                 spool: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.node_name = node_name
        self.timeout = timeout
        self.api_key = api_key
        self.spool = spool
        self._local = threading.local()  # one HTTP session per thread: requests.Session is not thread-safe

    @property
    def http(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update({"X-API-Key": self.api_key, "User-Agent": f"codecshift-node/{self.node_name}"})
        return session

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
            raise DashboardError(f"the dashboard refused this node's API key: {_message(data, 'refused')}",
                                 response.status_code)
        if response.status_code >= 500:
            raise DashboardError(f"the dashboard failed ({response.status_code})", response.status_code)
        return response.status_code, data

    def _retrying(self, method: str, path: str, body: dict[str, Any], seconds: float) -> tuple[int, Any]:
        """Retry while the dashboard is away; an answer it really gave (200, 4xx) returns."""
        deadline = time.monotonic() + seconds
        delay = 1.0
        while True:
            try:
                status, data = self._call(method, path, body)
                if not _proxy_answer(status, data):
                    return status, data
                error = DashboardError(f"the dashboard is away (HTTP {status})", status)
            except DashboardError as exc:
                if not exc.temporary:
                    raise
                error = exc
            if time.monotonic() + delay > deadline:
                raise error
            log.warning("%s %s not delivered yet (%s); retrying in %.0f s", method, path, error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)

    def register(self, payload: dict[str, Any]) -> dict[str, Any]:
        status, data = self._call("POST", "/api/nodes/register", payload)
        if status != 200:
            raise DashboardError(_message(data, f"registration failed ({status})"), status)
        return data

    def settings(self) -> dict[str, Any]:
        """The cluster's behaviour settings (secrets are never sent to nodes)."""
        status, data = self._call("GET", "/api/settings")
        if status != 200:
            raise DashboardError(_message(data, f"settings refused ({status})"), status)
        return data.get("settings", {})

    def heartbeat(self, status_text: str, current_jobs: list[dict[str, int]]) -> dict[str, Any] | None:
        """The dashboard's answer; None only when it says it does not know this node."""
        status, data = self._call("POST", f"/api/nodes/{self.node_name}/heartbeat",
                                  {"status": status_text, "current_jobs": current_jobs})
        if status == 200:
            return data
        if status == 404 and not _proxy_answer(status, data):
            return None
        raise DashboardError(f"heartbeat answered {status}", status)

    def claim(self, job_id: int, attempt: int) -> dict[str, Any] | None:
        """The job's specification, or None when it is not claimable (acknowledge quietly)."""
        status, data = self._call("POST", f"/api/jobs/{job_id}/claim", {"node": self.node_name, "attempt": attempt})
        if status == 200:
            return data
        log.info("job %s attempt %s not claimed: %s", job_id, attempt, _message(data, str(status)))
        return None

    def progress(self, job_id: int, attempt: int, values: dict[str, Any]) -> bool:
        """Report progress; True only when the dashboard says to stop (a cancel, or the
        attempt is no longer this node's). Anything else keeps the encode going."""
        status, data = self._call("POST", f"/api/jobs/{job_id}/progress",
                                  {"node": self.node_name, "attempt": attempt, **values})
        if status == 200 and isinstance(data, dict) and "cancel" in data:
            return bool(data["cancel"])
        return status == 409

    def journal(self, job_id: int, attempt: int, journal: dict[str, Any]) -> None:
        """Record a replacement step before it is taken; retried while the dashboard is away,
        and raising (so the step is not taken) if it refuses or stays away."""
        status, data = self._retrying("PUT", f"/api/jobs/{job_id}/journal",
                                      {"node": self.node_name, "attempt": attempt, "journal": journal},
                                      JOURNAL_RETRY_SECONDS)
        if status != 200:
            raise DashboardError(_message(data, "journal refused"), status)

    def result(self, job_id: int, attempt: int, outcome: dict[str, Any]) -> bool:
        """Deliver a result; if the dashboard stays away it is spooled and sent later.
        Returns whether the dashboard has it now."""
        body = {"node": self.node_name, "attempt": attempt, **outcome}
        try:
            status, data = self._retrying("POST", f"/api/jobs/{job_id}/result", body, RESULT_RETRY_SECONDS)
        except DashboardError as exc:
            if not exc.temporary:
                raise
            self._spool(job_id, attempt, body)
            return False
        if status != 200:
            log.warning("result of job %s attempt %s refused: %s", job_id, attempt, _message(data, str(status)))
        return status == 200

    def _spool(self, job_id: int, attempt: int, body: dict[str, Any]) -> None:
        if self.spool is None:
            log.error("result of job %s lost: the dashboard is away and there is no spool folder", job_id)
            return
        self.spool.mkdir(parents=True, exist_ok=True)
        target = self.spool / f"job{job_id}-a{attempt}.json"
        partial = target.with_suffix(".tmp")
        partial.write_text(json.dumps(body), encoding="utf-8")
        partial.replace(target)
        log.warning("result of job %s kept in %s until the dashboard answers", job_id, target)

    def flush_spool(self) -> int:
        """Send spooled results; called by the heartbeat once the dashboard answers."""
        if self.spool is None or not self.spool.is_dir():
            return 0
        sent = 0
        for path in sorted(self.spool.glob("job*-a*.json")):
            job_id = int(path.stem.split("-a")[0].removeprefix("job"))
            body = json.loads(path.read_text(encoding="utf-8"))
            status, data = self._call("POST", f"/api/jobs/{job_id}/result", body)
            if _proxy_answer(status, data):
                break  # still away behind a proxy
            if status != 200:
                log.warning("spooled result of job %s refused: %s", job_id, _message(data, str(status)))
            path.unlink()
            sent += 1
        return sent

    def recovered(self, job_id: int, attempt: int, action: str, message: str) -> bool:
        status, data = self._call("POST", f"/api/jobs/{job_id}/recovered",
                                  {"node": self.node_name, "attempt": attempt, "action": action, "message": message})
        if status != 200:
            log.warning("recovery of job %s not recorded: %s", job_id, _message(data, str(status)))
        return status == 200

    def replacing_jobs(self) -> list[dict[str, Any]]:
        status, data = self._call("GET", f"/api/nodes/{self.node_name}/replacing")
        return data.get("jobs", []) if status == 200 else []
