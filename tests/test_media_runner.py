"""Running ffmpeg: progress parsing, cancel (terminate then kill), bounded log tail, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from codecshift.media.progress import Progress, ProgressParser
from codecshift.media.runner import RunResult, run_ffmpeg, spawn, stop

ROOT = Path(__file__).resolve().parent.parent
BLOCK = """frame=50
fps=24.5
stream_0_0_q=28.0
bitrate= 800.0kbits/s
total_size=200000
out_time_us=2000000
out_time_ms=2000000
out_time=00:00:02.000000
dup_frames=0
drop_frames=0
speed=2.00x
progress=continue
"""


def realtime_encode(seconds: int = 30) -> list[str]:
    """An encode that takes as long as its input (-re), to have time to poke at it."""
    return ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-nostats", "-progress", "pipe:1", "-re",
            "-f", "lavfi", "-i", f"testsrc2=size=64x36:rate=10:duration={seconds}", "-c:v", "rawvideo",
            "-f", "null", "-"]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_parser_turns_a_block_into_percent_speed_and_eta() -> None:
    parser = ProgressParser(duration=10.0)
    updates = [p for line in BLOCK.splitlines() if (p := parser.feed(line)) is not None]
    assert updates == [Progress(percent=20.0, fps=24.5, speed=2.0, eta_seconds=4.0, out_time=2.0, frame=50)]
    end = [parser.feed(line) for line in ("frame=250", "out_time_us=N/A", "speed=N/A", "progress=end")][-1]
    assert end == Progress(percent=100.0, fps=None, speed=None, eta_seconds=0.0, out_time=2.0, frame=250,
                           done=True)


def test_parser_without_duration_reports_time_only() -> None:
    parser = ProgressParser(duration=None)
    result = [parser.feed(line) for line in ("out_time=00:01:30.500000", "speed=0x", "progress=continue")][-1]
    assert result is not None and result.out_time == 90.5 and result.percent is None and result.eta_seconds is None


def test_real_encode_reports_progress_to_the_end(tmp_path: Path) -> None:
    updates: list[Progress] = []
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-nostats", "-progress", "pipe:1",
            "-stats_period", "0.1", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
            "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-f", "null", "-"]
    result = run_ffmpeg(args, duration=4.0, on_progress=updates.append)
    assert result.ok and result.returncode == 0 and not result.cancelled
    assert updates and updates[-1].done and updates[-1].percent == 100.0
    percents = [u.percent for u in updates]
    assert percents == sorted(percents)
    assert result.last_progress == updates[-1]


def test_cancel_stops_ffmpeg_at_the_first_poll() -> None:
    polls: list[float] = []
    started = time.monotonic()

    def should_cancel() -> bool:
        polls.append(time.monotonic())
        return len(polls) >= 2

    result = run_ffmpeg(realtime_encode(), duration=30, should_cancel=should_cancel, cancel_interval=0.2)
    assert result.cancelled and not result.ok and result.error() == "cancelled"
    assert len(polls) == 2 and time.monotonic() - started < 10


def test_cancel_kills_what_ignores_terminate() -> None:
    script = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('x', flush=True); "
              "time.sleep(60)")
    started = time.monotonic()
    result = run_ffmpeg([sys.executable, "-c", script], should_cancel=lambda: time.monotonic() - started > 0.5,
                        cancel_interval=0.1, kill_after=0.5)
    assert result.cancelled and result.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_log_tail_is_bounded_and_keeps_the_end() -> None:
    script = "import sys\nfor i in range(5000): print(f'line {i}', file=sys.stderr)\nsys.exit(3)"
    result = run_ffmpeg([sys.executable, "-c", script])
    lines = result.log_tail.splitlines()
    assert len(lines) == 200 and lines[-1] == "line 4999" and lines[0] == "line 4800"
    assert result.returncode == 3 and result.error() == "ffmpeg exited with code 3: line 4997 | line 4998 | line 4999"


def test_errors_are_explained() -> None:
    full = RunResult(returncode=1, cancelled=False, elapsed=1.0,
                     log_tail="[matroska @ 0x1] Error writing trailer: No space left on device")
    assert full.disk_full and full.error() == "disk full while writing the output (No space left on device)"
    limit = RunResult(returncode=-signal.SIGXFSZ, cancelled=False, elapsed=1.0, log_tail="")
    assert limit.disk_full and "file size limit" in limit.error()
    killed = RunResult(returncode=-signal.SIGKILL, cancelled=False, elapsed=1.0, log_tail="")
    assert not killed.disk_full and killed.error() == "ffmpeg was killed by SIGKILL"


def test_ffmpeg_runs_in_its_own_session() -> None:
    process = spawn(realtime_encode())
    try:
        assert os.getsid(process.pid) == process.pid != os.getsid(0)
    finally:
        stop(process)
    assert process.returncode is not None


def test_ffmpeg_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """SIGKILL the Python parent: PR_SET_PDEATHSIG takes its ffmpeg child down too."""
    script = textwrap.dedent(f"""
        import sys, time
        from codecshift.media.runner import spawn
        process = spawn({realtime_encode(60)!r})
        print(process.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert psutil.Process(child).name() == "ffmpeg"
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(child), "ffmpeg outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.parametrize("hook", ["on_progress", "should_cancel"])
def test_a_failing_hook_stops_ffmpeg_and_propagates(hook: str) -> None:
    children_before = {p.pid for p in psutil.Process().children()}

    def boom(*_args: object) -> bool:
        raise RuntimeError("dashboard unreachable")

    with pytest.raises(RuntimeError, match="dashboard unreachable"):
        run_ffmpeg(realtime_encode(), duration=30, **{hook: boom})
    leftover = [p for p in psutil.Process().children() if p.pid not in children_before and not gone(p.pid)]
    assert leftover == []
