"""Helpers for API handlers that hand work to the control worker."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tasks import names
from tasks.publisher import CeleryPublisher
from web.extensions import celery

log = logging.getLogger(__name__)


def publisher() -> CeleryPublisher:
    return CeleryPublisher(celery())


def enqueue(task_name: str, args: Sequence[object] = ()) -> bool:
    """Send a control task; a broker outage is logged, not turned into a failed request,
    because the database already holds the state and beat repeats the work."""
    try:
        publisher().enqueue(task_name, args)
        return True
    except Exception as exc:
        log.warning("could not enqueue %s: %s", task_name, exc)
        return False


def request_dispatch() -> bool:
    return enqueue(names.DISPATCH)
