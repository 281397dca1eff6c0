"""A transcode node's state inside its worker process: identity, encoders, slots,
running jobs, and the heartbeat that keeps the dashboard informed.

The worker runs Celery's threads pool, so tasks share this object. Each encoder
family has its own slot count (an NVENC session limit, CPU default 1); the
worker's concurrency is their sum.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from codecshift.config import InfraSettings
from codecshift.media.capabilities import EncoderCheck, families_of, probe_encoders
from codecshift.version import read_version
from tasks.node_client import DashboardError, NodeClient
from tasks.publisher import worker_hostname

log = logging.getLogger(__name__)

_RUNTIME: NodeRuntime | None = None


def current() -> NodeRuntime:
    if _RUNTIME is None:
        raise RuntimeError("this process is not a CodecShift transcode node (start it with `codecshift worker`)")
    return _RUNTIME


def install(runtime: NodeRuntime | None) -> None:
    global _RUNTIME
    _RUNTIME = runtime


@dataclass
class RunningJob:
    job_id: int
    attempt: int
    family: str
    cancel: threading.Event = field(default_factory=threading.Event)


class NodeRuntime:
    def __init__(self, settings: InfraSettings, app: Celery, *, name: str | None = None,
                 checks: list[EncoderCheck] | None = None) -> None:
        self.settings = settings
        self.app = app
        self.hostname = socket.gethostname()
        self.name = name or settings.node_name or self.hostname
        self.client = NodeClient(settings.dashboard_url, settings.api_key, self.name,
                                 spool=settings.data_path / "spool" / self.name)
        self.checks = checks if checks is not None else probe_encoders(settings.encoders or None)
        self.codecs_by_family: dict[str, list[str]] = families_of(self.checks)
        self.queues = [family for family in ("nvenc", "qsv", "vaapi", "cpu") if self.codecs_by_family.get(family)]
        self.cluster_settings: dict[str, Any] = {}
        self.concurrency: dict[str, int] = {}
        self.slots: dict[str, threading.BoundedSemaphore] = {}
        self.running: dict[int, RunningJob] = {}
        self.lock = threading.Lock()
        self.consuming = True
        self.stopping = False
        self.stop_event = threading.Event()
        self.heartbeat_thread: threading.Thread | None = None

    @property
    def celery_hostname(self) -> str:
        return worker_hostname(self.name)

    def registration(self) -> dict[str, Any]:
        return {
            "name": self.name, "hostname": self.hostname, "version": read_version(),
            "capabilities": {"encoders": {c.name: {"family": c.family, "codec": c.codec, "works": c.works,
                                                   "error": c.error} for c in self.checks},
                             "families": self.codecs_by_family},
            "queues": self.queues, "concurrency": self.concurrency,
            "path_mappings": [{"from": s, "to": t} for s, t in self.settings.parsed_path_mappings()],
            "current_jobs": self.current_jobs(),
        }

    def register(self) -> dict[str, Any]:
        """Register with the dashboard; the answer carries the cluster's settings."""
        self.apply_settings(self.client.settings())
        answer = self.client.register(self.registration())
        self.consuming = answer.get("desired_state", "running") == "running"
        return answer

    def apply_settings(self, values: dict[str, Any]) -> None:
        self.cluster_settings = values
        self.concurrency = {family: int(values.get(f"concurrency_{family}", 1)) for family in self.queues}
        for family, limit in self.concurrency.items():
            if family not in self.slots:
                self.slots[family] = threading.BoundedSemaphore(limit)

    @property
    def total_concurrency(self) -> int:
        return max(1, sum(self.concurrency.values()))

    @contextlib.contextmanager
    def slot(self, family: str) -> Iterator[None]:
        """Wait for a free encode slot of ``family`` (prefetch may hand the worker more
        messages of one family than it may run at once)."""
        semaphore = self.slots.get(family) or self.slots.setdefault(family, threading.BoundedSemaphore(1))
        with semaphore:
            yield

    @contextlib.contextmanager
    def track(self, job_id: int, attempt: int, family: str) -> Iterator[RunningJob]:
        job = RunningJob(job_id, attempt, family)
        with self.lock:
            self.running[job_id] = job
        try:
            yield job
        finally:
            with self.lock:
                self.running.pop(job_id, None)

    def current_jobs(self) -> list[dict[str, int]]:
        with self.lock:
            return [{"job_id": job.job_id, "attempt": job.attempt} for job in self.running.values()]

    # -- heartbeat -----------------------------------------------------------

    def start_heartbeat(self) -> None:
        self.heartbeat_thread = threading.Thread(target=self._heartbeat_loop, name="codecshift-heartbeat",
                                                 daemon=True)
        self.heartbeat_thread.start()

    def stop_heartbeat(self) -> None:
        self.stop_event.set()

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.beat_once()
            except DashboardError as exc:
                log.warning("heartbeat failed: %s", exc)
            except Exception:
                log.exception("heartbeat failed")
            interval = float(self.cluster_settings.get("heartbeat_seconds", 10))
            self.stop_event.wait(interval)

    def beat_once(self) -> None:
        status = "stopping" if self.stopping else "online" if self.consuming else "paused"
        answer = self.client.heartbeat(status, self.current_jobs())
        if answer is None:
            log.warning("the dashboard no longer knows node %s; registering again", self.name)
            answer = self.register()
        if self.client.flush_spool():
            log.info("delivered results kept while the dashboard was away")
        if answer.get("settings"):
            self.cluster_settings = answer["settings"]
        if answer.get("recover_jobs"):
            self.recover(answer["recover_jobs"])
        for job_id in answer.get("cancel_jobs", []):
            with self.lock:
                job = self.running.get(int(job_id))
            if job is not None:
                job.cancel.set()
        self.apply_desired_state(answer.get("desired_state", "running"))

    def recover(self, jobs: list[dict[str, Any]]) -> None:
        """Roll interrupted replacements of this node forward or back (not the ones running)."""
        from tasks.node_jobs import recover_jobs

        with self.lock:
            running = set(self.running)
        recover_jobs(self, [job for job in jobs if job.get("id") not in running])

    def apply_desired_state(self, desired: str) -> None:
        """Start or stop consuming through Celery's remote control, addressed to ourselves
        (control commands run on the worker's own event loop, which is thread-safe)."""
        want = desired == "running" and not self.stopping
        if want == self.consuming:
            return
        control = self.app.control
        for queue in self.queues:
            if want:
                control.add_consumer(queue, exchange="codecshift", routing_key=queue,
                                     destination=[self.celery_hostname])
            else:
                control.cancel_consumer(queue, destination=[self.celery_hostname])
        self.consuming = want
        log.info("node %s %s taking jobs", self.name, "resumed" if want else "stopped")
