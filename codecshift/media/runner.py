"""Run one ffmpeg process: progress callbacks, cancel, a bounded log tail, no orphans.

ffmpeg runs in its own session (a Ctrl-C in the terminal reaches only us, and
we turn it into a clean cancel) and with PR_SET_PDEATHSIG, so it is killed if
the thread that started it dies, even by SIGKILL. Linux ties that signal to
the spawning *thread*, not the process: the caller's thread must outlive the
encode (a Celery task's thread does; a short-lived helper thread would not).
"""

from __future__ import annotations

import collections
import ctypes
import functools
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from codecshift.media.progress import Progress, ProgressParser

PR_SET_PDEATHSIG = 1
TAIL_LINES = 200
TAIL_CHARS = 16_000
_SIGKILL = int(signal.SIGKILL)
_DISK_FULL_MARKERS = ("No space left on device", "File too large", "Disk quota exceeded")

try:
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    _PRCTL = _LIBC.prctl if _LIBC is not None else None
except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
    _PRCTL = None


@dataclass(frozen=True)
class RunResult:
    returncode: int
    cancelled: bool
    log_tail: str
    elapsed: float
    last_progress: Progress | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.cancelled

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None

    @property
    def disk_full(self) -> bool:
        return self.signal == signal.SIGXFSZ or any(m in self.log_tail for m in _DISK_FULL_MARKERS)

    def error(self) -> str:
        """What went wrong, in one line fit for a job's reason."""
        if self.cancelled:
            return "cancelled"
        if self.signal == signal.SIGXFSZ:
            return "disk full: the file size limit was exceeded while writing the output"
        if self.disk_full:
            marker = next(m for m in _DISK_FULL_MARKERS if m in self.log_tail)
            return f"disk full while writing the output ({marker})"
        if self.signal is not None:
            return f"ffmpeg was killed by {signal.Signals(self.signal).name}"
        lines = [line.strip() for line in self.log_tail.splitlines() if line.strip()]
        detail = " | ".join(lines[-3:])[-500:]
        return f"ffmpeg exited with code {self.returncode}" + (f": {detail}" if detail else "")


def _die_with_parent(parent_pid: int) -> None:  # runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SVT_LOG", "2")  # SVT-AV1 prints its banner at info level regardless of -v
    env.setdefault("AV_LOG_FORCE_NOCOLOR", "1")
    env.update(extra or {})
    return env


def spawn(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ffmpeg (or ffprobe) tied to this thread's life, in its own session."""
    return subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                            env=env or child_env(),
                            preexec_fn=functools.partial(_die_with_parent, os.getpid()))


def stop(process: subprocess.Popen[bytes], kill_after: float = 5.0) -> None:
    """Terminate, then kill if it does not go within ``kill_after`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(kill_after)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_ffmpeg(args: Sequence[str], *, duration: float | None = None,
               on_progress: Callable[[Progress], None] | None = None,
               should_cancel: Callable[[], bool] | None = None, cancel_interval: float = 1.0,
               kill_after: float = 5.0, env: dict[str, str] | None = None) -> RunResult:
    """Run to the end or until ``should_cancel()`` says so (asked at start, then about every second)."""
    started = time.monotonic()
    process = spawn(args, env)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    reader = threading.Thread(target=_drain, args=(process, tail), daemon=True)
    reader.start()
    parser = ProgressParser(duration)
    cancelled = False
    try:
        cancelled = _pump(process, parser, on_progress, should_cancel, cancel_interval)
        if cancelled:
            stop(process, kill_after)
        process.wait()
    finally:
        stop(process, kill_after)
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
    text = "\n".join(tail)[-TAIL_CHARS:]
    return RunResult(returncode=process.returncode, cancelled=cancelled, log_tail=text,
                     elapsed=time.monotonic() - started, last_progress=parser.last)


def _drain(process: subprocess.Popen[bytes], tail: collections.deque[str]) -> None:
    assert process.stderr is not None
    with process.stderr:
        for raw in process.stderr:
            tail.append(raw.decode("utf-8", "replace").rstrip()[:1000])


def _pump(process: subprocess.Popen[bytes], parser: ProgressParser,
          on_progress: Callable[[Progress], None] | None, should_cancel: Callable[[], bool] | None,
          interval: float) -> bool:
    """Read progress until ffmpeg closes stdout; True when cancelled."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    pending = b""
    next_poll = time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if should_cancel is not None and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + interval
                if should_cancel():
                    return True
            timeout = max(0.0, next_poll - time.monotonic()) if should_cancel else 1.0
            if not selector.select(timeout):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                progress = parser.feed(line.decode("utf-8", "replace"))
                if progress is not None and on_progress is not None:
                    on_progress(progress)
