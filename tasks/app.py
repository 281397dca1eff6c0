"""The Celery app factory, configured from the infrastructure settings.

Every process (web, control worker, beat, transcode nodes) builds the same app;
only the queues it consumes differ. ``celery -A tasks.app`` works as usual.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from codecshift.config import InfraSettings, load_settings
from codecshift.services.publisher import ALL_QUEUES
from tasks import names
from tasks.schedule import build_schedule

# Longer than the longest encode: a message is only redelivered by the broker
# after this long; a dead node's job is requeued much sooner by the reaper.
VISIBILITY_TIMEOUT = 7 * 24 * 3600


def _transport_options(settings: InfraSettings) -> dict[str, Any]:
    if not settings.is_embedded_broker:
        return {"visibility_timeout": VISIBILITY_TIMEOUT}
    folder = settings.broker_folder
    for sub in ("queue", "control", "processed"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"), "processed_folder": str(folder / "processed"),
            "store_processed": False}


def create_celery(settings: InfraSettings | None = None, *, schedule_values: dict[str, Any] | None = None) -> Celery:
    settings = settings or load_settings()
    app = Celery("codecshift", broker=settings.effective_broker_url, set_as_current=False)
    exchange = Exchange("codecshift", type="direct")
    app.conf.update(
        task_queues=[Queue(name, exchange, routing_key=name) for name in ALL_QUEUES],
        task_default_queue="control",
        task_default_exchange="codecshift",
        task_default_routing_key="control",
        task_routes={name: {"queue": queue, "routing_key": queue}
                     for name, queue in names.CONTROL_TASK_QUEUES.items()},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_send_sent_event=True,
        worker_send_task_events=True,
        task_track_started=True,
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        beat_schedule=build_schedule(schedule_values),
        timezone="UTC",
    )
    app.conf.include = ["tasks.control_tasks", "tasks.node_tasks", "tasks.plex_tasks"]
    app.codecshift_settings = settings  # type: ignore[attr-defined]
    return app


def __getattr__(name: str) -> Any:
    """`celery -A tasks.app` finds ``app``: built on first access, not at import."""
    if name in ("app", "celery"):
        global _app
        if _app is None:
            _app = create_celery()
        return _app
    raise AttributeError(name)


_app: Celery | None = None
