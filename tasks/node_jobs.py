"""What a node does with one claimed job: map its path, run the media engine with
progress, cancel and journal hooks wired to the dashboard, and report the result."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from codecshift import pathmap
from codecshift.media import tempfiles
from codecshift.media.healthcheck import check_health
from codecshift.media.pipeline import Hooks, TranscodeRequest, transcode_file
from codecshift.media.replace import recover
from tasks.node_client import DashboardError
from tasks.node_runtime import NodeRuntime

log = logging.getLogger(__name__)
PROGRESS_INTERVAL = 1.0


def local_path(runtime: NodeRuntime, job: dict[str, Any]) -> pathmap.MappedPath:
    return pathmap.to_local(job["path"], job.get("path_mappings") or [], node=runtime.name,
                            node_overrides=runtime.settings.parsed_path_mappings())


def _unreachable(runtime: NodeRuntime, job: dict[str, Any], mapped: pathmap.MappedPath) -> dict[str, Any]:
    message = pathmap.describe_unreachable(job["path"], mapped, node=runtime.name,
                                           library=(job.get("library") or {}).get("name"))
    return {"status": "failed", "reason": message, "stage": "source"}


def run_transcode(runtime: NodeRuntime, spec: dict[str, Any], family: str) -> dict[str, Any]:
    job, settings = spec["job"], spec["settings"]
    job_id, attempt = job["id"], job["attempt"]
    mapped = local_path(runtime, job)
    if not os.path.isfile(mapped.path):
        return _unreachable(runtime, job, mapped)
    codec = job["target_codec"]
    if codec not in runtime.codecs_by_family.get(family, []):
        return {"status": "failed", "stage": "starting", "family": family,
                "reason": f"node {runtime.name} has no working {codec} encoder on {family}"}
    stat = os.stat(mapped.path)
    with runtime.track(job_id, attempt, family) as running:
        last_report = [0.0]

        def on_progress(progress: Any) -> None:
            now = time.monotonic()
            if now - last_report[0] < PROGRESS_INTERVAL:
                return
            last_report[0] = now
            try:
                if runtime.client.progress(job_id, attempt, {
                        "stage": "encoding", "progress": progress.percent, "fps": progress.fps,
                        "speed": progress.speed, "eta_seconds": progress.eta_seconds}):
                    running.cancel.set()
            except DashboardError as exc:
                log.warning("progress of job %s not delivered: %s", job_id, exc)

        def on_stage(stage: str) -> None:
            try:
                if runtime.client.progress(job_id, attempt, {"stage": stage}):
                    running.cancel.set()
            except DashboardError as exc:
                log.warning("stage of job %s not delivered: %s", job_id, exc)

        def persist_journal(journal: dict[str, Any]) -> None:
            # Raises when the dashboard does not record it: the step is then not taken.
            runtime.client.journal(job_id, attempt, journal)

        # The file is decided again here, from a fresh probe: it may have been replaced
        # (say by an HEVC release) since the scan queued it, or requeued after it was done.
        request = TranscodeRequest(
            source=mapped.path, settings=settings, family=family, codec=codec,
            tag=tempfiles.job_tag(job_id, attempt), expected_size=stat.st_size,
            expected_mtime_ns=stat.st_mtime_ns, keep_original=bool(settings.get("keep_original")),
            decide=True, families=[family], allow_symlink=bool(job.get("approved")))
        result = transcode_file(request, Hooks(on_progress=on_progress, should_cancel=running.cancel.is_set,
                                               on_stage=on_stage, persist_journal=persist_journal))
    return outcome_of(runtime, job, result, family)


def outcome_of(runtime: NodeRuntime, job: dict[str, Any], result: Any, family: str) -> dict[str, Any]:
    """The result body the dashboard expects. The output replaces the job's file, perhaps with
    a new extension, so its library path is the job's path with the output's extension
    (no reverse mapping, which need not exist)."""
    output_path = None
    mtime_ns = inode = None
    if result.output_path:
        output_path = os.path.splitext(job["path"])[0] + os.path.splitext(result.output_path)[1]
        try:
            info = os.stat(result.output_path)
            mtime_ns, inode = info.st_mtime_ns, info.st_ino
        except OSError:
            pass
    return {
        "status": result.status, "code": result.code, "reason": result.reason or "", "encoder": result.encoder,
        "family": family,
        "stage": getattr(result, "stage", None), "source_codec": result.source_codec,
        "source_size": result.source_size, "output_size": result.output_size, "output_path": output_path,
        "output_mtime_ns": mtime_ns, "output_inode": inode, "quality_metric": result.quality_metric,
        "quality_score": result.quality_score, "encode_seconds": result.encode_seconds,
        "total_seconds": result.total_seconds, "log_tail": result.log_tail,
    }


def run_healthcheck(runtime: NodeRuntime, spec: dict[str, Any], family: str) -> dict[str, Any]:
    job = spec["job"]
    mapped = local_path(runtime, job)
    if not os.path.isfile(mapped.path):
        return _unreachable(runtime, job, mapped)
    with runtime.track(job["id"], job["attempt"], family) as running:
        health = check_health(mapped.path, should_cancel=running.cancel.is_set)
    if running.cancel.is_set():
        return {"status": "cancelled", "reason": "cancelled by user", "family": family}
    return {"status": "done", "health": "ok" if health.ok else "corrupt",
            "reason": "" if health.ok else health.message, "family": family}


def recover_interrupted(runtime: NodeRuntime) -> list[tuple[int, str]]:
    """On start: roll this node's interrupted replacements forward or back."""
    return recover_jobs(runtime, runtime.client.replacing_jobs())


def recover_jobs(runtime: NodeRuntime, jobs: list[dict[str, Any]]) -> list[tuple[int, str]]:
    done = []
    for item in jobs:
        journal = item.get("journal")
        if not journal:
            continue
        try:
            outcome = recover(journal)
        except Exception as exc:  # left for the next heartbeat: the files stay as they are
            log.error("cannot recover job %s yet: %s", item["id"], exc)
            continue
        runtime.client.recovered(item["id"], item["attempt"], outcome.action, outcome.message)
        done.append((item["id"], outcome.action))
    return done
