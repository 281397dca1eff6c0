"""Queueing decided files: jobs per second into the database, with their first messages
published to Redis by the dispatcher, against a bare multi-row INSERT of the same rows.

    .venv/bin/python bench/bench_queueing.py [--files 100000] [--db both|sqlite|postgresql]

Runs the scanner's own job creation (`scanner.create_jobs`, in the scanner's batch size)
over 100k media rows that were decided "transcode", then one dispatcher pass with a few
online nodes, which publishes the bounded first messages. Goal: at least 20k jobs/s.
Needs Redis on 127.0.0.1:6379. Not part of the test run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import databases, row, timed
from sqlalchemy import func, insert, select, text

from codecshift.config import load_settings
from codecshift.db import init_schema, make_engine, session_scope
from codecshift.media.decide import Decision
from codecshift.models import Job, Library, MediaFile, Node, utcnow
from codecshift.services import dispatcher, scanner
from support.services import redis_database
from tasks.app import create_celery
from tasks.publisher import CeleryPublisher

BATCH = 500


def seed(url: str, count: int) -> tuple[object, int, list[str]]:
    engine = make_engine(url)
    init_schema(engine)
    now = utcnow()
    paths = [f"/media/show{i // 1000:03d}/episode {i:06d}.mkv" for i in range(count)]
    with session_scope(engine) as session:
        library = Library(name="bench", roots=["/media"])
        session.add(library)
        session.flush()
        for start in range(0, count, 20_000):
            session.execute(insert(MediaFile), [
                {"library_id": library.id, "path": p, "size": 10**9, "mtime_ns": 1, "inode": i, "state": "queued",
                 "first_seen_at": now, "updated_at": now} for i, p in enumerate(paths[start:start + 20_000])])
        for index in range(4):
            session.add(Node(name=f"node{index}", hostname="h", version="x", queues=["cpu"], concurrency={"cpu": 2},
                             capabilities={"families": {"cpu": ["hevc", "av1"]}}, status="online",
                             last_heartbeat=utcnow()))
        library_id = library.id
    return engine, library_id, paths


def queue_all(engine: object, library_id: int, paths: list[str]) -> int:
    decision = Decision(action="transcode", reason="h264 at 8 Mbit/s", codec="hevc")
    created = 0
    for start in range(0, len(paths), BATCH):
        with session_scope(engine) as session:
            created += scanner.create_jobs(session, library_id, {p: decision for p in paths[start:start + BATCH]})
    return created


def bare_insert(engine: object, library_id: int, count: int) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        for start in range(0, count, BATCH):
            session.execute(insert(Job), [{"kind": "transcode", "library_id": library_id, "path": f"/bare/{i}",
                                           "status": "done", "target_codec": "hevc", "priority": 0, "attempt": 0,
                                           "created_at": now, "updated_at": now}
                                          for i in range(start, min(count, start + BATCH))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--db", default="both", choices=("both", "sqlite", "postgresql"))
    args = parser.parse_args()
    print(f"Queueing {args.files:,} decided files")
    with tempfile.TemporaryDirectory(prefix="codecshift-bench-") as tmp, redis_database() as redis_db:
        publisher = CeleryPublisher(create_celery(load_settings(
            {"CODECSHIFT_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}"})))
        with databases(Path(tmp), args.db) as targets:
            for label, url in targets:
                engine, library_id, paths = seed(url, args.files)
                bare_time, _ = timed(lambda e=engine, lib=library_id: bare_insert(e, lib, args.files))
                row(f"{label}: bare INSERT of the same rows", f"{args.files / bare_time:,.0f} rows/s",
                    "(baseline)")
                with session_scope(engine) as session:
                    session.execute(text("DELETE FROM jobs"))
                create_time, created = timed(lambda e=engine, lib=library_id, p=paths: queue_all(e, lib, p))
                with session_scope(engine) as session:
                    dispatch_time, report = timed(lambda s=session: dispatcher.dispatch(s, publisher))
                    live = session.scalar(select(func.count()).select_from(Job).where(Job.status == "queued"))
                assert created == live == args.files, (created, live)
                total = create_time + dispatch_time
                row(f"{label}: jobs created + first messages", f"{args.files / total:,.0f} jobs/s",
                    f"{create_time:.2f} s + dispatch {dispatch_time * 1000:.0f} ms publishing {report.published}; "
                    "goal >= 20,000/s")
                engine.dispose()


if __name__ == "__main__":
    main()
