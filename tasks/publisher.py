"""The Celery side of ``codecshift.services.publisher.Publisher``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import Celery

from tasks import names

log = logging.getLogger(__name__)


def worker_hostname(node_name: str) -> str:
    """The Celery hostname of a node's worker, the destination of remote control."""
    return f"codecshift@{node_name}"


class CeleryPublisher:
    """Publishes job messages and control tasks, and reads queue depths, through ``app``."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish_jobs(self, messages: Sequence[tuple[int, int, str, str]]) -> None:
        with self.app.producer_or_acquire() as producer:
            for job_id, attempt, kind, queue in messages:
                task = names.HEALTHCHECK if kind == "healthcheck" else names.TRANSCODE
                self.app.send_task(task, args=[job_id, attempt], queue=queue, routing_key=queue,
                                   producer=producer)

    def queue_depth(self, queue: str) -> int:
        with self.app.connection_for_write() as conn:
            channel = conn.default_channel
            # Kombu's virtual transports (Redis, filesystem) count messages with
            # _size(); AMQP brokers answer a passive declare.
            size = getattr(channel, "_size", None)
            if size is not None:
                return int(size(queue))
            return int(channel.queue_declare(queue=queue, passive=True).message_count)

    def enqueue(self, task_name: str, args: Sequence[object] = (), queue: str | None = None) -> None:
        queue = queue or names.CONTROL_TASK_QUEUES.get(task_name, "control")
        self.app.send_task(task_name, args=list(args), queue=queue, routing_key=queue)

    def node_control(self, node_name: str, action: str, queues: Sequence[str] = ()) -> None:
        destination = [worker_hostname(node_name)]
        control = self.app.control
        if action == "pause":
            for queue in queues:
                control.cancel_consumer(queue, destination=destination)
        elif action == "resume":
            for queue in queues:
                control.add_consumer(queue, exchange="codecshift", routing_key=queue, destination=destination)
        elif action == "shutdown":
            control.shutdown(destination=destination)
        else:
            raise ValueError(f"unknown remote control action {action!r}")
