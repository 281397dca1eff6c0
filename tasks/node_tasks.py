"""Tasks consumed by transcode nodes on the capability queues (nvenc, qsv, vaapi, cpu)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from tasks import names, node_runtime
from tasks.node_jobs import run_healthcheck, run_transcode

log = logging.getLogger(__name__)


def _family(task: Any, spec: dict[str, Any]) -> str:
    delivered = (task.request.delivery_info or {}).get("routing_key")
    return spec["job"].get("queue") or delivered or "cpu"


def _run(task: Any, job_id: int, attempt: int, runner: Any) -> str:
    runtime = node_runtime.current()
    queue = (task.request.delivery_info or {}).get("routing_key") or "cpu"
    with runtime.slot(queue):
        spec = runtime.client.claim(job_id, attempt)
        if spec is None:
            return "not claimed"  # a duplicate or stale message: acknowledge quietly
        family = _family(task, spec)
        live_attempt = spec["job"]["attempt"]
        try:
            outcome = runner(runtime, spec, family)
        except Exception as exc:
            log.exception("job %s failed on node %s", job_id, runtime.name)
            outcome = {"status": "failed", "reason": f"node error: {exc}", "family": family}
        runtime.client.result(job_id, live_attempt, outcome)
        return outcome["status"]


@shared_task(name=names.TRANSCODE, bind=True, acks_late=True)
def transcode(self: Any, job_id: int, attempt: int) -> str:
    """Claim, encode, verify and replace one file."""
    return _run(self, job_id, attempt, run_transcode)


@shared_task(name=names.HEALTHCHECK, bind=True, acks_late=True)
def healthcheck(self: Any, job_id: int, attempt: int) -> str:
    """Claim and fully decode one file, reporting whether it is corrupt."""
    return _run(self, job_id, attempt, run_healthcheck)
