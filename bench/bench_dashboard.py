"""Dashboard speed at scale: a million history rows and 100k jobs in PostgreSQL.

    .venv/bin/python bench/bench_dashboard.py [--history 1000000] [--jobs 100000] [--requests 200]
                                              [--duration 10] [--connections 16] [--keep]

Seeds a fresh database with COPY, starts the dashboard under gunicorn (`codecshift web`) on
loopback with authentication on, then prints
* p50/p95/max latency of /api/status, the jobs page, the history stats and a few neighbours,
  sequential requests over one keep-alive connection (goal: p95 <= 50 ms);
* the same stats computed the naive way (aggregating the history rows directly), as the
  baseline the daily rollup is measured against, in the same run;
* requests per second under load from wrk (Debian's `wrk`; a Python load generator
  when it is not installed), with /api/health as the framework's floor.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import requests  # noqa: E402
from sqlalchemy import text  # noqa: E402

from codecshift.apikeys import create_key  # noqa: E402
from codecshift.db import engine_for, init_schema, session_scope  # noqa: E402
from codecshift.models import Library, Node  # noqa: E402
from codecshift.services import history_stats  # noqa: E402
from codecshift.users import create_user  # noqa: E402
from codecshift.version import read_version  # noqa: E402
from support.services import fresh_postgres_database  # noqa: E402

NODES = [f"node-{i}" for i in range(1, 9)]
ENCODERS = ["libx265", "hevc_nvenc", "hevc_qsv", "libsvtav1"]
CODECS = ["h264"] * 6 + ["mpeg4", "vc1", "mpeg2video", "vp9"]
LIBRARIES = 5
PASSWORD = "bench-password-1"


# -- seeding ------------------------------------------------------------------------------


def _copy(engine: Any, table: str, columns: list[str], rows: io.StringIO) -> None:
    rows.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT text)", rows)
        raw.commit()
    finally:
        raw.close()


def _ts(moment: datetime) -> str:
    return moment.isoformat()


def seed(engine: Any, history: int, jobs: int, rng: random.Random) -> dict[str, Any]:
    """Libraries, nodes, jobs and history like a cluster that has run for two years."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for index in range(1, LIBRARIES + 1):
            session.add(Library(name=f"Library {index}", kind="folder", roots=[f"/media/lib{index}"],
                                profile={}, path_mappings=[]))
        for index, name in enumerate(NODES):
            session.add(Node(name=name, hostname=f"host-{index}", version=read_version() if index else "0.0.9",
                             capabilities={"encoders": {"libx265": {"family": "cpu", "codec": "hevc", "works": True}},
                                           "families": {"cpu": ["hevc"]}},
                             queues=["cpu"], concurrency={"cpu": 1}, status="online", last_heartbeat=now,
                             current_jobs=[]))
        admin_key = create_key(session, "bench admin", "admin").secret
        create_user(session, "bench", PASSWORD, is_admin=True)

    started = time.perf_counter()
    job_columns = ["kind", "library_id", "path", "status", "priority", "queue", "target_codec", "attempt",
                   "cpu_fallback", "progress", "node", "cancel_requested", "source_size", "error",
                   "created_at", "updated_at", "finished_at"]
    buffer = io.StringIO()
    statuses = (["queued"] * 850 + ["done"] * 90 + ["failed"] * 30 + ["skipped"] * 20 + ["cancelled"] * 5
                + ["awaiting_approval"] * 5)
    running_left = len(NODES)
    for index in range(jobs):
        status = "running" if running_left > 0 else rng.choice(statuses)
        running_left -= status == "running"
        library = rng.randint(1, LIBRARIES)
        created = now - timedelta(seconds=rng.randint(0, 200 * 86400))
        finished = _ts(created + timedelta(hours=2)) if status in ("done", "failed", "skipped", "cancelled") \
            else "\\N"
        node = NODES[index % len(NODES)] if status in ("running", "done", "failed") else "\\N"
        error = "ffmpeg exited with 1: Invalid data found" if status == "failed" else "\\N"
        buffer.write("\t".join([
            "transcode", str(library), f"/media/lib{library}/Show {index % 997}/Episode {index}.mkv", status,
            str(rng.choice((0, 0, 0, 5))), "cpu" if status != "queued" else "\\N", "hevc", "1", "f",
            "42.5" if status == "running" else "0", node, "f", str(rng.randint(200, 8000) * 1_000_000), error,
            _ts(created), _ts(created), finished]) + "\n")
    _copy(engine, "jobs", job_columns, buffer)
    jobs_seconds = time.perf_counter() - started

    started = time.perf_counter()
    history_columns = ["library_id", "path", "source_codec", "target_codec", "size_before", "size_after",
                       "quality_metric", "quality_score", "node", "encoder", "encode_seconds", "total_seconds",
                       "finished_at", "in_rollup"]
    chunk = 200_000
    for start in range(0, history, chunk):
        buffer = io.StringIO()
        for index in range(start, min(history, start + chunk)):
            library = rng.randint(1, LIBRARIES)
            before = rng.randint(200, 8000) * 1_000_000
            after = int(before * rng.uniform(0.3, 0.8))
            ssim = rng.random() < 0.3
            encode = rng.uniform(300, 7200)
            finished = now - timedelta(seconds=rng.randint(0, 730 * 86400))
            buffer.write("\t".join([
                str(library), f"/media/lib{library}/Movie {index}/Movie {index}.mkv", rng.choice(CODECS), "hevc",
                str(before), str(after), "ssim" if ssim else "\\N",
                f"{rng.uniform(0.95, 0.99):.4f}" if ssim else "\\N", rng.choice(NODES), rng.choice(ENCODERS),
                f"{encode:.1f}", f"{encode + 30:.1f}", _ts(finished), "f"]) + "\n")
        _copy(engine, "history", history_columns, buffer)
    history_seconds = time.perf_counter() - started

    started = time.perf_counter()
    with session_scope(engine) as session:
        history_stats.rebuild(session)
    rollup_seconds = time.perf_counter() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return {"admin_key": admin_key, "jobs_seconds": jobs_seconds, "history_seconds": history_seconds,
            "rollup_seconds": rollup_seconds}


# -- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CODECSHIFT_")},
           "CODECSHIFT_DATABASE_URL": url, "CODECSHIFT_BROKER_URL": "redis://127.0.0.1:6379/13",
           "CODECSHIFT_SECRET_KEY": "bench-secret", "CODECSHIFT_LOG_LEVEL": "WARNING",
           "CODECSHIFT_DATA_DIR": str(log.parent / "data")}
    process = subprocess.Popen([sys.executable, "-m", "codecshift.cli.main", "web", "--bind", f"127.0.0.1:{port}",
                                "--workers", str(workers)], env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10).ok:
                return process
        except requests.RequestException:
            time.sleep(0.3)
    os.killpg(process.pid, signal.SIGTERM)
    raise SystemExit(f"gunicorn did not start:\n{log.read_text()[-3000:]}")


def sign_in(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    response = session.post(base + "/login", data={"username": "bench", "password": PASSWORD,
                                                   "csrf_token": token.group(1) if token else ""})
    if response.url.rstrip("/") != base or "Sign in" in response.text[:2000]:
        raise SystemExit(f"could not sign in: {response.status_code} {response.url}")
    return session


# -- measurements -------------------------------------------------------------------------


def latency(session: requests.Session, url: str, count: int, headers: dict[str, str]) -> dict[str, float]:
    first = session.get(url, headers=headers, allow_redirects=False)
    if first.status_code != 200:
        raise SystemExit(f"{url} answered {first.status_code}, not the page itself")
    for _ in range(10):
        session.get(url, headers=headers).raise_for_status()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    times.sort()
    return {"p50": statistics.median(times), "p95": times[int(len(times) * 0.95) - 1], "max": times[-1]}


def naive_stats_ms(engine: Any, rounds: int = 5) -> float:
    """The stats the history page shows, aggregated straight from the history rows."""
    queries = [
        "SELECT node, count(*), sum(size_before), sum(size_after) FROM history "
        "WHERE finished_at >= now() - interval '30 days' GROUP BY node",
        "SELECT encoder, count(*), sum(size_before), sum(size_after) FROM history "
        "WHERE finished_at >= now() - interval '30 days' GROUP BY encoder",
        "SELECT source_codec, count(*), sum(size_before), sum(size_after) FROM history "
        "WHERE finished_at >= now() - interval '30 days' GROUP BY source_codec",
        "SELECT date(timezone('UTC', finished_at)), count(*), sum(size_before - size_after) FROM history "
        "GROUP BY 1",
        "SELECT count(*), sum(size_before), sum(size_after) FROM history",
    ]
    times = []
    with engine.connect() as conn:
        for _ in range(rounds):
            started = time.perf_counter()
            for query in queries:
                conn.execute(text(query)).all()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class LoadError(RuntimeError):
    """The server answered errors under load."""


def wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> float | None:
    binary = shutil.which("wrk")
    if binary is None:
        return None
    args = [binary, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise LoadError(f"wrk saw {errors.group(1)} failed answers from {url}")
    return float(match.group(1)) if match else None


def python_load(url: str, headers: dict[str, str], seconds: int, connections: int) -> float:
    """A simple closed-loop load generator: ``connections`` threads, keep-alive, for ``seconds``."""
    done = [0] * connections
    stop = time.monotonic() + seconds

    def worker(slot: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            session.get(url, headers=headers).raise_for_status()
            done[slot] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per endpoint")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (8 threads each)")
    parser.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    args = parser.parse_args()
    rng = random.Random(5)
    with fresh_postgres_database("cs_bench") as url, tempfile.TemporaryDirectory() as tmp:
        engine = engine_for(url)
        init_schema(engine)
        print(f"seeding {args.jobs:,} jobs and {args.history:,} history rows ...", flush=True)
        seeded = seed(engine, args.history, args.jobs, rng)
        print(f"  jobs {seeded['jobs_seconds']:.1f}s, history {seeded['history_seconds']:.1f}s, "
              f"rollup rebuild {seeded['rollup_seconds']:.1f}s")
        port = free_port()
        server = start_gunicorn(url, port, args.workers, Path(tmp) / "gunicorn.log")
        base = f"http://127.0.0.1:{port}"
        try:
            key = {"X-API-Key": seeded["admin_key"]}
            browser = sign_in(base)
            cookie = {"Cookie": "; ".join(f"{c.name}={c.value}" for c in browser.cookies)}
            targets = [
                ("/api/health (floor)", "/api/health", key),
                ("/api/status", "/api/status", key),
                ("jobs page", "/jobs", {}),
                ("jobs page, status=failed", "/jobs?status=failed", {}),
                ("/api/jobs", "/api/jobs", key),
                ("/api/history/stats (30 days)", "/api/history/stats?days=30", key),
                ("/api/history/stats (all time)", "/api/history/stats", key),
                ("history page", "/history", {}),
                ("overview page", "/", {}),
            ]
            print(f"\nlatency, {args.requests} sequential requests each (ms)")
            print(f"  {'endpoint':34} {'p50':>7} {'p95':>7} {'max':>7}")
            for label, path, headers in targets:
                client = browser if not headers else requests.Session()
                figures = latency(client, base + path, args.requests, headers)
                goal = "  goal p95 <= 50 ms: " + ("met" if figures["p95"] <= 50 else "MISSED") \
                    if label in ("/api/status", "jobs page", "/api/history/stats (30 days)") else ""
                print(f"  {label:34} {figures['p50']:7.1f} {figures['p95']:7.1f} {figures['max']:7.1f}{goal}")
            print(f"\nbaseline: the same stats aggregated from the history rows directly: "
                  f"{naive_stats_ms(engine):.0f} ms per page view (median of 5)")
            tool = "wrk" if shutil.which("wrk") else "python threads"
            print(f"\nthroughput under load ({tool}, {args.connections} connections, {args.duration}s each, "
                  f"gunicorn {args.workers} workers x 8 threads)")
            for label, path, headers in [targets[0], targets[1], targets[2], targets[5]]:
                headers = headers or cookie
                if requests.get(base + path, headers=headers, allow_redirects=False).status_code != 200:
                    raise SystemExit(f"{path} does not answer 200 with these credentials")
                rate = wrk(base + path, headers, args.duration, args.connections)
                if rate is None:
                    rate = python_load(base + path, headers, args.duration, args.connections)
                print(f"  {label:34} {rate:8.0f} requests/s")
            if args.keep:
                print(f"\ndatabase kept: {url}")
                input("press Enter to drop it ...")
        except LoadError:
            log = (Path(tmp) / "gunicorn.log").read_text(errors="replace")
            print("\n".join(line for line in log.splitlines() if re.search(r'" [45]\d\d |Traceback|Error', line)))
            raise
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
