"""What the services need from the broker, as a protocol (implemented in tasks/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

TRANSCODE_QUEUES = ("nvenc", "qsv", "vaapi", "cpu")
CONTROL_QUEUES = ("scan", "maintenance", "control")
ALL_QUEUES = TRANSCODE_QUEUES + CONTROL_QUEUES
FAMILY_ORDER = ("nvenc", "qsv", "vaapi", "cpu")


class Publisher(Protocol):
    def publish_jobs(self, messages: Sequence[tuple[int, int, str, str]]) -> None:
        """Publish (job_id, attempt, kind, queue) messages to the capability queues."""

    def queue_depth(self, queue: str) -> int:
        """Messages waiting on ``queue`` in the broker."""

    def enqueue(self, task_name: str, args: Sequence[object] = (), queue: str = "control") -> None:
        """Send a control-side task (scan, dispatch, Plex refresh, notification)."""

    def node_control(self, node_name: str, action: str, queues: Sequence[str] = ()) -> None:
        """Celery remote control of one node: pause, resume, shutdown."""
