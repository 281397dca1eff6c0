"""Notifications through Apprise's json:// to a real local HTTP server: delivered, switched
off, refused, unreachable, slow and malformed targets, none of which may raise."""

from __future__ import annotations

import logging
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest

from codecshift import notify
from codecshift.db import init_schema, make_engine, session_scope
from codecshift.models import History, Job, Library, Node, ScanRun
from support.receiver import Receiver


@pytest.fixture
def closed_port() -> int:
    """A port on which nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _settings(*urls: str, **switches: bool) -> dict:
    return {"notify_urls": list(urls), **switches}


def test_job_failure_reaches_the_target(receiver: Receiver) -> None:
    result = notify.notify_job_failed(
        _settings(receiver.url()), job_id=42, path="/media/Movies/Heat (1995).mkv",
        error="ffmpeg exited with code 1: Invalid data found", node="gpu-box", encoder="hevc_nvenc",
        library="Movies", attempts=3)
    assert result.ok and result.attempted
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["path"] == "/hook"
    assert post["agent"] == "CodecShift"
    assert post["title"] == "CodecShift: job 42 failed"
    assert post["type"] == "failure"
    assert "/media/Movies/Heat (1995).mkv" in post["message"]
    assert "Invalid data found" in post["message"]
    assert "gpu-box (hevc_nvenc)" in post["message"]
    assert "Attempts: 3" in post["message"]


def test_node_offline_message(receiver: Receiver) -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    result = notify.notify_node_offline(_settings(receiver.url()), node="old-pc",
                                        last_heartbeat=now - timedelta(minutes=5), requeued_jobs=2, now=now)
    assert result.ok
    post = receiver.posts[0]
    assert post["title"] == "CodecShift: node old-pc is offline"
    assert post["type"] == "warning"
    assert "5 min ago (2025-03-01 11:55:00 UTC)" in post["message"]
    assert "Jobs returned to the queue: 2." in post["message"]


@pytest.mark.parametrize(("event_call", "switch"), [
    (lambda s: notify.notify_job_failed(s, job_id=1, path="/m/a.mkv", error="x"), "notify_on_failure"),
    (lambda s: notify.notify_node_offline(s, node="n", last_heartbeat=None), "notify_on_node_offline"),
])
def test_a_switched_off_event_sends_nothing(receiver: Receiver, event_call, switch: str) -> None:
    result = event_call(_settings(receiver.url(), **{switch: False}))
    assert not result.attempted and not result.ok
    assert result.skipped_reason == f"{switch} is off"
    assert receiver.posts == []
    # the switch given as form text ("false") means the same
    assert not event_call(_settings(receiver.url(), **{switch: "false"})).attempted


def test_no_urls_means_nothing_to_do() -> None:
    result = notify.notify_job_failed({}, job_id=1, path="/m/a.mkv", error="x")
    assert not result.attempted
    assert result.skipped_reason == "no notification URLs are set"


def test_a_refusing_target_is_reported_not_raised(receiver: Receiver, caplog) -> None:
    receiver.status = 500
    with caplog.at_level(logging.WARNING, logger="codecshift.notify"):
        result = notify.notify_job_failed(_settings(receiver.url()), job_id=7, path="/m/a.mkv", error="x")
    assert result.attempted and not result.ok
    assert len(receiver.posts) == 1
    (failure,) = result.failures
    assert "500" in failure.error
    assert any("job_failed" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)


def test_an_unreachable_target_is_reported_and_others_still_get_it(receiver: Receiver,
                                                                   closed_port: int) -> None:
    down = f"json://127.0.0.1:{closed_port}/hook"
    result = notify.notify_node_offline(_settings(down, receiver.url()), node="n", last_heartbeat=None)
    assert not result.ok
    by_target = {t.target.split("/")[2]: t for t in result.targets}
    assert not by_target[f"127.0.0.1:{closed_port}"].ok
    assert "connection" in by_target[f"127.0.0.1:{closed_port}"].error.lower()
    assert sum(t.ok for t in result.targets) == 1
    assert len(receiver.posts) == 1


def test_a_slow_target_is_abandoned_at_the_timeout(receiver: Receiver) -> None:
    receiver.hold = threading.Event()
    result = notify.notify_job_failed(_settings(receiver.url()), job_id=1, path="/m/a.mkv", error="x",
                                      timeout=0.5)
    assert receiver.received.is_set()  # the request did go out
    assert not result.ok
    assert result.targets[0].error == "timed out after 0.5 s"


def test_invalid_urls_are_named_without_their_secrets(receiver: Receiver) -> None:
    result = notify.notify_test(_settings("nosuchservice://sekrit-token@host", "not a url at all",
                                          receiver.url(user="alice:pa55word")))
    assert [t.ok for t in result.targets] == [False, False, True]
    assert result.targets[0].target == "nosuchservice://…"
    assert result.targets[1].target == "(not a URL)"
    assert "not a valid Apprise URL" in result.targets[0].error
    text = repr(result)
    assert "sekrit-token" not in text and "pa55word" not in text
    assert receiver.posts[0]["title"] == "CodecShift: test notification"


def test_the_test_message_ignores_the_switches(receiver: Receiver) -> None:
    result = notify.notify_test(_settings(receiver.url(), notify_on_failure=False,
                                          notify_on_library_done=False, notify_on_node_offline=False))
    assert result.ok


@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    init_schema(engine)
    yield engine
    engine.dispose()


def _library_with_jobs(engine, statuses: list[str]) -> int:
    with session_scope(engine) as session:
        library = Library(name="Movies", roots=["/media"])
        session.add(library)
        session.flush()
        for n, status in enumerate(statuses):
            session.add(Job(library_id=library.id, path=f"/media/{n}.mkv", status=status))
        session.add(History(library_id=library.id, path="/media/0.mkv", target_codec="hevc",
                            size_before=3 * 1024**3, size_after=1024**3))
        return library.id


def test_library_summary_and_done_notification(engine, receiver: Receiver) -> None:
    lid = _library_with_jobs(engine, ["done", "done", "failed", "skipped", "awaiting_approval", "running"])
    with session_scope(engine) as session:
        summary = notify.library_summary(session, lid)
    assert summary is not None and not summary.finished
    assert (summary.done, summary.failed, summary.skipped, summary.active) == (2, 1, 1, 1)
    refused = notify.notify_library_done(_settings(receiver.url()), summary)
    assert not refused.attempted and receiver.posts == []

    with session_scope(engine) as session:
        session.query(Job).filter(Job.status == "running").update({"status": "done"})
    with session_scope(engine) as session:
        summary = notify.library_summary(session, lid)
    assert summary.finished and summary.awaiting_approval == 1 and summary.bytes_saved == 2 * 1024**3
    result = notify.notify_library_done(_settings(receiver.url()), summary)
    assert result.ok
    post = receiver.posts[0]
    assert post["title"] == "CodecShift: library Movies is finished"
    assert post["type"] == "success"
    assert "Converted: 3" in post["message"]
    assert "Awaiting your approval: 1" in post["message"]
    assert "Space saved: 2.0 GiB" in post["message"]

    off = notify.notify_library_done(_settings(receiver.url(), notify_on_library_done=False), summary)
    assert not off.attempted and len(receiver.posts) == 1


def test_a_running_scan_keeps_the_library_open(engine) -> None:
    lid = _library_with_jobs(engine, ["done"])
    with session_scope(engine) as session:
        session.add(ScanRun(library_id=lid, status="running"))
    with session_scope(engine) as session:
        summary = notify.library_summary(session, lid)
        assert summary.scanning and not summary.finished
        assert notify.library_summary(session, lid + 1000) is None


def test_human_bytes() -> None:
    assert notify.human_bytes(0) == "0 B"
    assert notify.human_bytes(1536) == "1.5 KiB"
    assert notify.human_bytes(-5 * 1024**4) == "-5.0 TiB"


def _configure(engine, *urls: str, **switches: bool) -> None:
    from codecshift.settings_store import set_many

    with session_scope(engine) as session:
        set_many(session, {"notify_urls": list(urls), **switches})


def test_notify_event_reads_the_job_and_settings_from_the_database(engine, receiver: Receiver) -> None:
    lid = _library_with_jobs(engine, ["running"])
    with session_scope(engine) as session:
        job = session.query(Job).filter(Job.library_id == lid).one()
        job.status, job.error, job.node, job.encoder, job.attempt = "failed", "decode error", "n1", "libx265", 2
        job_id = job.id
    _configure(engine, receiver.url())
    result = notify.notify_event(engine, "job_failed", {"job_id": job_id})
    assert result.ok
    message = receiver.posts[0]["message"]
    assert "Library: Movies" in message and "decode error" in message and "n1 (libx265)" in message
    assert "Attempts: 2" in message

    _configure(engine, receiver.url(), notify_on_failure=False)
    assert notify.notify_event(engine, "job_failed", {"job_id": job_id}).skipped_reason == \
        "notify_on_failure is off"
    assert len(receiver.posts) == 1


def test_notify_event_library_done_and_node_offline(engine, receiver: Receiver) -> None:
    lid = _library_with_jobs(engine, ["done", "queued"])
    _configure(engine, receiver.url())
    early = notify.notify_event(engine, "library_done", {"library_id": lid})
    assert not early.attempted and "has work again" in early.skipped_reason
    with session_scope(engine) as session:
        session.query(Job).filter(Job.status == "queued").update({"status": "skipped"})
        session.add(Node(name="old-pc", hostname="old-pc", version="0.1.0", status="offline",
                         last_heartbeat=datetime.now(UTC) - timedelta(minutes=3)))
    assert notify.notify_event(engine, "library_done", {"library_id": lid}).ok
    assert receiver.posts[-1]["title"] == "CodecShift: library Movies is finished"
    assert notify.notify_event(engine, "node_offline", {"node": "old-pc"}).ok
    assert receiver.posts[-1]["title"] == "CodecShift: node old-pc is offline"
    assert "3 min ago" in receiver.posts[-1]["message"]
    assert len(receiver.posts) == 2


@pytest.mark.parametrize(("event", "payload", "reason"), [
    ("job_failed", {"job_id": 999_999}, "job 999999 no longer exists"),
    ("library_done", {"library_id": None}, "the job belongs to no library"),
    ("library_done", {"library_id": 999_999}, "library 999999 no longer exists"),
    ("party", {}, "unknown event 'party'"),
])
def test_notify_event_with_nothing_to_say(engine, event: str, payload: dict, reason: str) -> None:
    result = notify.notify_event(engine, event, payload)
    assert not result.attempted and result.skipped_reason == reason


def test_notify_event_never_raises(engine) -> None:
    bad = notify.notify_event(engine, "job_failed", {"no_job_id": 1})
    assert not bad.attempted and "could not read the event" in bad.skipped_reason


def test_notify_event_without_a_database_does_not_raise() -> None:
    from sqlalchemy.engine import make_url

    from support.services import POSTGRES_ADMIN_URL

    url = make_url(POSTGRES_ADMIN_URL).set(database="codecshift_no_such_database")
    missing = make_engine(url.render_as_string(hide_password=False))
    try:
        down = notify.notify_event(missing, "node_offline", {"node": "n"})
    finally:
        missing.dispose()
    assert not down.attempted and "could not read the event" in down.skipped_reason
