"""Notifications through Apprise: a job failed, a library finished, a node went offline.

The targets (``notify_urls``) and the three switches come from the behaviour
settings (see ``codecshift.registry``). Sending is a side effect that must
never hurt the work it reports on, so every function here returns a
``NotifyResult`` instead of raising, logs what went wrong, and waits at most
``timeout`` seconds however slow a target is (the sends run in daemon threads
that are abandoned when the deadline passes). Call these from a Celery task or
the reaper, not from inside a web request: a slow target may take the whole
timeout.

The control worker's ``codecshift.notify`` task calls ``notify_event(engine,
event, payload)`` with the payloads the cluster enqueues (``{"job_id"}``,
``{"library_id"}``, ``{"node"}``); it reads what the message needs in a short
session and sends after the session is closed.

Apprise URLs often carry tokens, so results and log lines only ever name a
target by its privacy-masked URL without the query string.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import apprise
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from codecshift import registry, settings_store
from codecshift.db import session_scope
from codecshift.models import (
    ACTIVE_STATUSES,
    AWAITING_APPROVAL,
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    SCAN_LIVE_STATUSES,
    SKIPPED,
    History,
    Job,
    Library,
    Node,
    ScanRun,
)

log = logging.getLogger(__name__)

JOB_FAILED = "job_failed"
LIBRARY_DONE = "library_done"
NODE_OFFLINE = "node_offline"
TEST = "test"

# The setting that switches each event on or off; TEST ignores the switches.
SWITCHES: dict[str, str] = {
    JOB_FAILED: "notify_on_failure",
    LIBRARY_DONE: "notify_on_library_done",
    NODE_OFFLINE: "notify_on_node_offline",
}

DEFAULT_TIMEOUT = 15.0
MAX_TITLE = 200
MAX_BODY = 2000

_ASSET = apprise.AppriseAsset(app_id="CodecShift", app_desc="CodecShift media transcoding cluster")


@dataclass(frozen=True)
class TargetResult:
    """What happened at one target; ``target`` is masked and safe to show."""

    target: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class NotifyResult:
    """The outcome of one notification: skipped (with the reason) or sent to each target."""

    event: str
    attempted: bool
    skipped_reason: str | None = None
    targets: tuple[TargetResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Sent, and every target accepted it."""
        return self.attempted and bool(self.targets) and all(t.ok for t in self.targets)

    @property
    def failures(self) -> tuple[TargetResult, ...]:
        return tuple(t for t in self.targets if not t.ok)


# -- sending -----------------------------------------------------------------


class _ThreadCapture(logging.Handler):
    """Collect Apprise's warnings from one thread: the reason a target refused."""

    def __init__(self, thread_id: int) -> None:
        super().__init__(logging.WARNING)
        self.thread_id = thread_id
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread_id:
            self.messages.append(record.getMessage())


def _label(plugin: Any) -> str:
    try:
        return str(plugin.url(privacy=True)).split("?", 1)[0]
    except Exception:  # a plugin that cannot print itself still gets a name
        return f"{getattr(plugin, 'protocol', None) or 'apprise'}://…"


def _bad_label(url: str) -> str:
    """Name an unparseable URL by its scheme only: the rest may be a token."""
    scheme, sep, _ = url.strip().partition("://")
    return f"{scheme}://…" if sep and scheme.isascii() and scheme.isalnum() else "(not a URL)"


def _send_one(plugin: Any, title: str, body: str, notify_type: apprise.NotifyType) -> TargetResult:
    capture = _ThreadCapture(threading.get_ident())
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.addHandler(capture)
    try:
        ok = bool(plugin.notify(body=body, title=title, notify_type=notify_type))
    except Exception as exc:  # a plugin bug must not reach the caller
        ok = False
        capture.messages.append(f"{type(exc).__name__}: {exc}")
    finally:
        apprise_logger.removeHandler(capture)
    if ok:
        return TargetResult(_label(plugin), True)
    return TargetResult(_label(plugin), False, " ".join(capture.messages[-2:]) or "delivery failed")


def send(urls: Iterable[str], title: str, body: str, *, event: str = TEST,
         notify_type: apprise.NotifyType = apprise.NotifyType.INFO,
         timeout: float = DEFAULT_TIMEOUT) -> NotifyResult:
    """Send one message to every URL at once; never raises, returns within ``timeout``."""
    title = _clip(title, MAX_TITLE)
    body = _clip(body, MAX_BODY)
    results: list[TargetResult | None] = []
    plugins: list[tuple[int, Any]] = []
    for url in urls:
        plugin = apprise.Apprise.instantiate(url, asset=_ASSET) if url.strip() else None
        if plugin is None:
            results.append(TargetResult(_bad_label(url), False, "not a valid Apprise URL (unknown scheme "
                                        "or missing parts)"))
        else:
            results.append(None)
            plugins.append((len(results) - 1, plugin))
    if not results:
        return NotifyResult(event, attempted=False, skipped_reason="no notification URLs are set")

    outcomes: dict[int, TargetResult] = {}

    def run(index: int, plugin: Any) -> None:
        outcomes[index] = _send_one(plugin, title, body, notify_type)

    threads = [threading.Thread(target=run, args=item, name=f"codecshift-notify-{item[0]}", daemon=True)
               for item in plugins]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    finished = dict(outcomes)
    for index, plugin in plugins:
        results[index] = finished.get(index) or TargetResult(
            _label(plugin), False, f"timed out after {timeout:g} s")

    result = NotifyResult(event, attempted=True, targets=tuple(r for r in results if r is not None))
    for target in result.targets:
        if target.ok:
            log.info("notification %s sent to %s", event, target.target)
        else:
            log.warning("notification %s to %s failed: %s", event, target.target, target.error)
    return result


def notify(values: Mapping[str, Any], event: str, title: str, body: str, *,
           notify_type: apprise.NotifyType = apprise.NotifyType.INFO,
           timeout: float = DEFAULT_TIMEOUT) -> NotifyResult:
    """Send ``event`` to the configured URLs if its switch is on.

    ``values`` are the behaviour settings (``settings_store.load_all``); a
    missing key means its registry default.
    """
    switch = SWITCHES.get(event)
    if switch is not None and not _setting(values, switch):
        return NotifyResult(event, attempted=False, skipped_reason=f"{switch} is off")
    urls = _setting(values, "notify_urls")
    if not urls:
        return NotifyResult(event, attempted=False, skipped_reason="no notification URLs are set")
    try:
        return send(urls, title, body, event=event, notify_type=notify_type, timeout=timeout)
    except Exception as exc:  # belt and braces: nothing here may fail a job
        log.exception("notification %s could not be sent", event)
        return NotifyResult(event, attempted=True, targets=(TargetResult("(all)", False, str(exc)),))


def _setting(values: Mapping[str, Any], key: str) -> Any:
    if key in values:
        try:
            return registry.parse_value(key, values[key])
        except ValueError:
            log.warning("setting %s has an unusable value; using its default", key)
    return registry.get_setting(key).parse(registry.get_setting(key).default)


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- the three events --------------------------------------------------------


def notify_job_failed(values: Mapping[str, Any], *, job_id: int, path: str, error: str,
                      node: str | None = None, encoder: str | None = None, library: str | None = None,
                      attempts: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> NotifyResult:
    """A job ended ``failed``: which file, where, and why (the source file is untouched)."""
    lines = [f"File: {path}"]
    if library:
        lines.append(f"Library: {library}")
    if node or encoder:
        lines.append(f"Node: {node or 'unknown'}" + (f" ({encoder})" if encoder else ""))
    if attempts is not None:
        lines.append(f"Attempts: {attempts}")
    lines += ["The original file was left as it was.", "", f"Error: {error.strip() or 'unknown'}"]
    return notify(values, JOB_FAILED, f"CodecShift: job {job_id} failed", "\n".join(lines),
                  notify_type=apprise.NotifyType.FAILURE, timeout=timeout)


def notify_node_offline(values: Mapping[str, Any], *, node: str, last_heartbeat: datetime | None,
                        requeued_jobs: int | None = None, now: datetime | None = None,
                        timeout: float = DEFAULT_TIMEOUT) -> NotifyResult:
    """A node stopped reporting; its running jobs go back to the queue."""
    now = now or datetime.now(UTC)
    if last_heartbeat is None:
        seen = "It never reported a heartbeat."
    else:
        seconds = max(0, int((now - last_heartbeat).total_seconds()))
        stamp = f"{last_heartbeat.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        seen = f"Last heartbeat {_duration(seconds)} ago ({stamp})."
    if requeued_jobs is None:
        body = f"{seen}\nIts running jobs return to the queue; their originals are untouched."
    else:
        body = f"{seen}\nJobs returned to the queue: {requeued_jobs}."
    return notify(values, NODE_OFFLINE, f"CodecShift: node {node} is offline", body,
                  notify_type=apprise.NotifyType.WARNING, timeout=timeout)


@dataclass(frozen=True)
class LibrarySummary:
    """Where a library stands: finished means the cluster has nothing left to do for it."""

    library_id: int
    name: str
    queued: int
    active: int
    scanning: bool
    awaiting_approval: int
    done: int
    failed: int
    skipped: int
    cancelled: int
    bytes_saved: int

    @property
    def finished(self) -> bool:
        """No queued or running job and no scan in progress; jobs awaiting a person's
        approval do not hold the library open (the message counts them)."""
        return self.queued == 0 and self.active == 0 and not self.scanning


def library_summary(session: Session, library_id: int) -> LibrarySummary | None:
    """Count a library's jobs by outcome with two aggregate queries; None if it does not exist."""
    library = session.get(Library, library_id)
    if library is None:
        return None
    counts: dict[str, int] = dict(session.execute(
        select(Job.status, func.count()).where(Job.library_id == library_id).group_by(Job.status)).all())
    saved = session.scalar(select(func.coalesce(func.sum(History.size_before - History.size_after), 0))
                           .where(History.library_id == library_id))
    scanning = session.scalar(select(func.count()).select_from(ScanRun).where(
        ScanRun.library_id == library_id, ScanRun.status.in_(SCAN_LIVE_STATUSES)))
    return LibrarySummary(
        library_id=library_id, name=library.name, queued=counts.get(QUEUED, 0),
        active=sum(counts.get(status, 0) for status in ACTIVE_STATUSES), scanning=bool(scanning),
        awaiting_approval=counts.get(AWAITING_APPROVAL, 0), done=counts.get(DONE, 0),
        failed=counts.get(FAILED, 0), skipped=counts.get(SKIPPED, 0),
        cancelled=counts.get(CANCELLED, 0), bytes_saved=int(saved or 0))


def notify_library_done(values: Mapping[str, Any], summary: LibrarySummary, *,
                        timeout: float = DEFAULT_TIMEOUT) -> NotifyResult:
    """A library has no work left. Callers check ``summary.finished`` first; sending an
    unfinished summary is refused rather than announcing something untrue."""
    if not summary.finished:
        return NotifyResult(LIBRARY_DONE, attempted=False, skipped_reason="the library still has work")
    lines = [f"Converted: {summary.done}", f"Skipped: {summary.skipped}", f"Failed: {summary.failed}"]
    if summary.cancelled:
        lines.append(f"Cancelled: {summary.cancelled}")
    if summary.awaiting_approval:
        lines.append(f"Awaiting your approval: {summary.awaiting_approval}")
    lines.append(f"Space saved: {human_bytes(summary.bytes_saved)}")
    return notify(values, LIBRARY_DONE, f"CodecShift: library {summary.name} is finished", "\n".join(lines),
                  notify_type=apprise.NotifyType.SUCCESS, timeout=timeout)


def notify_test(values: Mapping[str, Any], *, urls: Sequence[str] | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> NotifyResult:
    """A test message for the settings page, sent whatever the switches say."""
    targets = list(urls) if urls is not None else _setting(values, "notify_urls")
    return send(targets, "CodecShift: test notification",
                "Notifications from CodecShift reach this target.", event=TEST, timeout=timeout)


# -- from the cluster's notify task ------------------------------------------


def notify_event(engine: Engine, event: str, payload: Mapping[str, Any], *,
                 timeout: float = DEFAULT_TIMEOUT) -> NotifyResult:
    """Look up what ``event`` is about and send it; the session is closed before sending,
    so a slow target holds no database connection. Never raises."""
    try:
        with session_scope(engine) as session:
            values = settings_store.load_all(session)
            send_it = _prepare(session, values, event, payload)
    except Exception as exc:  # a broken payload or an unreachable database must not loop the task
        log.exception("notification %s could not be prepared", event)
        return NotifyResult(event, attempted=False, skipped_reason=f"could not read the event: {exc}")
    if isinstance(send_it, str):
        log.info("notification %s not sent: %s", event, send_it)
        return NotifyResult(event, attempted=False, skipped_reason=send_it)
    return send_it(timeout)


def _prepare(session: Session, values: dict[str, Any], event: str, payload: Mapping[str, Any]) -> Any:
    """A function sending the notification, or the reason there is nothing to send."""
    if event == JOB_FAILED:
        job = session.get(Job, int(payload["job_id"]))
        if job is None:
            return f"job {payload['job_id']} no longer exists"
        library = session.get(Library, job.library_id) if job.library_id else None
        fields = {"job_id": job.id, "path": job.path, "error": job.error or job.reason or "unknown",
                  "node": job.node, "encoder": job.encoder, "library": library.name if library else None,
                  "attempts": job.attempt}
        return lambda timeout: notify_job_failed(values, **fields, timeout=timeout)
    if event == LIBRARY_DONE:
        if payload.get("library_id") is None:
            return "the job belongs to no library"
        summary = library_summary(session, int(payload["library_id"]))
        if summary is None:
            return f"library {payload['library_id']} no longer exists"
        if not summary.finished:
            return f"library {summary.name} has work again"
        return lambda timeout: notify_library_done(values, summary, timeout=timeout)
    if event == NODE_OFFLINE:
        name = str(payload["node"])
        last = session.scalar(select(Node.last_heartbeat).where(Node.name == name))
        requeued = payload.get("requeued_jobs")
        return lambda timeout: notify_node_offline(
            values, node=name, last_heartbeat=last, timeout=timeout,
            requeued_jobs=int(requeued) if requeued is not None else None)
    return f"unknown event {event!r}"


# -- formatting --------------------------------------------------------------


def human_bytes(size: int) -> str:
    """1536 -> '1.5 KiB'; negative sizes keep their sign."""
    sign = "-" if size < 0 else ""
    value = float(abs(size))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
