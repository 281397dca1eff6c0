"""One job through the whole cluster against a bare ffmpeg run of the same encode.

    .venv/bin/python bench/bench_cluster_e2e.py [--size 640x360] [--seconds 20] [--preset fast]

Starts a real cluster (the dashboard on loopback over a fresh PostgreSQL database,
Redis, a control worker and one CPU node), adds a library with one clip, and times
from the "scan now" request until the job is done (scan, probe, decide, dispatch,
claim, encode, verify, journaled replace, result). The baseline is a bare ffmpeg run
of the exact command the node builds, on a copy of the same clip. Prints the
end-to-end overhead ratio. Needs PostgreSQL and Redis on 127.0.0.1. Not part of the
test run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import row

from codecshift.media.commands import build_command
from codecshift.media.probe import probe
from codecshift.media.runner import child_env
from support.cluster import TEST_SETTINGS, running_cluster
from support.media import fast_settings, make_clip
from support.services import fresh_postgres_database


def bare_encode(source: Path, preset: str, folder: Path) -> float:
    info = probe(source)
    plan = build_command(info, fast_settings(preset_cpu_hevc=preset), "cpu", "hevc", folder / "bare-out.mkv")
    started = time.perf_counter()
    subprocess.run(plan.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=child_env(), check=True)
    return time.perf_counter() - started


def cluster_run(tmp: Path, source: Path, preset: str) -> tuple[float, float]:
    """(seconds from the scan request to done, seconds the node spent from claim to result)."""
    media = tmp / "media"
    media.mkdir()
    shutil.copy2(source, media / "movie.mkv")
    with fresh_postgres_database("cs_bench") as url, running_cluster(
            tmp / "cluster", url, settings={**TEST_SETTINGS, "dispatch_interval_seconds": 1,
                                            "heartbeat_seconds": 2}) as cluster:
        cluster.start_control()
        cluster.start_worker("bench")
        library = cluster.add_library(media, profile={"preset_cpu_hevc": preset, "min_saving_percent": 0})
        started = time.perf_counter()
        response = cluster.api("POST", f"/api/libraries/{library}/scan")
        assert response.status_code == 202, response.text
        jobs = cluster.wait_jobs(lambda js: js[0].status in ("done", "failed", "skipped"), 900, "job finished")
        elapsed = time.perf_counter() - started
        if jobs[0].status != "done":
            raise SystemExit(f"the job ended {jobs[0].status}: {jobs[0].error}")
        job = cluster.api("GET", f"/api/jobs/{jobs[0].id}").json()
        node_time = (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"]))
        return elapsed, node_time.total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--preset", default="fast")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codecshift-bench-") as tmp_name:
        tmp = Path(tmp_name)
        source = make_clip(tmp / "source.mkv", duration=args.seconds, size=args.size, quality=18)
        bare_encode(source, args.preset, tmp)  # warm-up
        bare = bare_encode(source, args.preset, tmp)
        total, node_time = cluster_run(tmp, source, args.preset)
        bare_again = bare_encode(source, args.preset, tmp)
    baseline = min(bare, bare_again)
    print(f"One job through the cluster: {args.size}, {args.seconds:g} s clip, libx265 preset {args.preset}")
    row("bare ffmpeg, same command (baseline)", f"{baseline:.2f} s", f"runs: {bare:.2f}, {bare_again:.2f}")
    row("scan request -> job done, whole cluster", f"{total:.2f} s")
    row("  of which claim -> result on the node", f"{node_time:.2f} s",
        "encode + verification (full decode) + journaled swap")
    row("  of which scan, probe, dispatch, delivery", f"{total - node_time:.2f} s")
    row("end-to-end overhead ratio", f"{total / baseline:.3f}",
        "includes scan, probe, dispatch, claim, verification (full decode) and the journaled swap")


if __name__ == "__main__":
    main()
