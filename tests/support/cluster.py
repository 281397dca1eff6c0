"""A real cluster for tests: the dashboard app served on loopback, and real worker,
control and beat processes started with the `codecshift` CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from codecshift import settings_store
from codecshift.apikeys import create_key
from codecshift.config import InfraSettings, load_settings
from codecshift.db import engine_for, init_schema, session_scope
from codecshift.models import Job, Node
from support.services import redis_database

# Fast, test-sized behaviour: tiny clips qualify, nodes report often, silence is noticed quickly.
TEST_SETTINGS: dict[str, Any] = {
    "min_file_size_mb": 0, "min_duration_seconds": 0, "min_bits_per_pixel": 0.0,
    "preset_cpu_hevc": "ultrafast", "preset_cpu_av1": 12, "heartbeat_seconds": 1,
    "node_offline_after_seconds": 4, "min_saving_percent": 5,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2,
             message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")


class ServerThread:
    """The dashboard app served by werkzeug on a free loopback port."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def restarted(self) -> ServerThread:
        """The same app on the same port again (the dashboard coming back after an outage)."""
        return ServerThread(self.app, self.port).start()


@dataclass
class Cluster:
    """Everything a cluster test needs; processes are stopped when the test ends."""

    env: dict[str, str]
    settings: InfraSettings
    admin_key: str
    node_key: str
    server: ServerThread
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def engine(self) -> Any:
        return engine_for(self.settings.effective_database_url)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"X-API-Key": self.admin_key, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def spawn(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = {**self.env, **(extra_env or {})}
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen([sys.executable, "-m", "codecshift.cli.main", *args], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def start_worker(self, name: str, encoders: str = "libx265,libsvtav1", wait: bool = True,
                     extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with session_scope(self.engine) as session:  # one key per node: a node key is bound to its node
            key = create_key(session, f"node {name}", "node").secret
        process = self.spawn(f"worker-{name}", "worker", "--name", name,
                             extra_env={"CODECSHIFT_ENCODERS": encoders, "CODECSHIFT_API_KEY": key,
                                        **(extra_env or {})})
        if wait:
            self.wait_node_online(name)
        return process

    def wait_node_online(self, name: str, timeout: float = 60) -> None:
        def online() -> bool:
            self.check_alive()
            with session_scope(self.engine) as session:
                node = session.scalar(select(Node).where(Node.name == name))
                return bool(node and node.status == "online" and node.current_jobs is not None
                            and self._worker_ready(name))
        wait_for(online, timeout, message=f"node {name} online")

    def _worker_ready(self, name: str) -> bool:
        log = self.log_dir / f"worker-{name}.log"
        return log.exists() and b" ready." in log.read_bytes()

    def start_control(self) -> None:
        self.spawn("control", "control", "--concurrency", "2")
        wait_for(lambda: b" ready." in (self.log_dir / "control.log").read_bytes(), 60, message="control ready")

    def start_beat(self) -> None:
        self.spawn("beat", "beat")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes[name]
        os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None and not getattr(process, "expected_exit", False):
                log = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{name} exited with {process.returncode}:\n{log}")

    def set_settings(self, values: dict[str, Any]) -> None:
        with session_scope(self.engine) as session:
            settings_store.set_many(session, values)

    def jobs(self) -> list[Job]:
        with session_scope(self.engine) as session:
            return list(session.scalars(select(Job).order_by(Job.id)))

    def wait_jobs(self, predicate: Callable[[list[Job]], bool], timeout: float = 120,
                  message: str = "jobs") -> list[Job]:
        def check() -> list[Job] | None:
            self.check_alive()
            jobs = self.jobs()
            return jobs if jobs and predicate(jobs) else None
        return wait_for(check, timeout, interval=0.3, message=message)

    def add_library(self, root: Path, name: str = "Movies", profile: dict[str, Any] | None = None) -> int:
        response = self.api("POST", "/api/libraries", json={"name": name, "roots": [str(root)],
                                                             "profile": profile or {}})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def scan(self, library_id: int) -> dict[str, Any]:
        response = self.api("POST", f"/api/libraries/{library_id}/scan")
        assert response.status_code == 202, response.text
        scan_id = response.json()["id"]
        return wait_for(lambda: (self.api("GET", f"/api/scans/{scan_id}").json()
                                 if self.api("GET", f"/api/scans/{scan_id}").json()["status"]
                                 in ("done", "failed", "cancelled") else None), 60, message="scan finished")

    def logs(self) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            parts.append(f"==> {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.server.stop()


@contextmanager
def running_cluster(tmp_path: Path, database_url: str, *, broker_url: str | None = None,
                    settings: dict[str, Any] | None = None) -> Iterator[Cluster]:
    """A dashboard on loopback over ``database_url`` with Redis as the broker."""
    with ExitStack() as stack:
        if broker_url is None:
            broker_url = f"redis://127.0.0.1:6379/{stack.enter_context(redis_database())}"
        yield from _cluster(tmp_path, database_url, broker_url, settings)


def _cluster(tmp_path: Path, database_url: str, broker_url: str,
             settings: dict[str, Any] | None) -> Iterator[Cluster]:
    from tasks.app import create_celery
    from web.app import create_app

    data = tmp_path / "data"
    log_dir = tmp_path / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    base_env = {"CODECSHIFT_DATA_DIR": str(data), "CODECSHIFT_DATABASE_URL": database_url,
                "CODECSHIFT_BROKER_URL": broker_url, "CODECSHIFT_SECRET_KEY": "test-secret",
                "CODECSHIFT_LOG_LEVEL": "INFO"}
    config = load_settings(base_env)
    engine = engine_for(config.effective_database_url)
    init_schema(engine)
    with session_scope(engine) as session:
        settings_store.set_many(session, {**TEST_SETTINGS, **(settings or {})})
        admin_key = create_key(session, "test admin", "admin").secret
        node_key = create_key(session, "test node", "node").secret
    app = create_app(config, engine=engine, celery_app=create_celery(config))
    server = ServerThread(app).start()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CODECSHIFT_")}, **base_env,
           "CODECSHIFT_DASHBOARD_URL": server.url}
    cluster = Cluster(env=env, settings=config, admin_key=admin_key, node_key=node_key, server=server,
                      log_dir=log_dir)
    try:
        yield cluster
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
