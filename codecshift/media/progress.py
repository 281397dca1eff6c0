"""Turn ffmpeg's ``-progress`` key=value blocks into percent, fps, speed and ETA."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    percent: float | None  # 0-100, None when the duration is unknown
    fps: float | None
    speed: float | None  # times real time
    eta_seconds: float | None
    out_time: float  # seconds of output written
    frame: int | None = None
    done: bool = False


class ProgressParser:
    """Feed it ffmpeg's progress lines; every completed block yields one Progress."""

    def __init__(self, duration: float | None) -> None:
        self.duration = duration if duration and duration > 0 else None
        self._block: dict[str, str] = {}
        self.last: Progress | None = None

    def feed(self, line: str) -> Progress | None:
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        if key != "progress":
            self._block[key.strip()] = value.strip()
            return None
        block, self._block = self._block, {}
        self.last = self._progress(block, done=value.strip() == "end")
        return self.last

    def _progress(self, block: dict[str, str], done: bool) -> Progress:
        out_time = _out_time(block)
        if out_time is None:
            out_time = self.last.out_time if self.last else 0.0
        speed = _number(block.get("speed", "").rstrip("x"))
        percent = eta = None
        if self.duration:
            percent = 100.0 if done else max(0.0, min(100.0, out_time / self.duration * 100))
            left = max(0.0, self.duration - out_time)
            eta = 0.0 if done else (left / speed if speed and speed > 0 else None)
        frame = _number(block.get("frame", ""))
        return Progress(percent=percent, fps=_number(block.get("fps", "")), speed=speed, eta_seconds=eta,
                        out_time=out_time, frame=int(frame) if frame is not None else None, done=done)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _out_time(block: dict[str, str]) -> float | None:
    """Seconds written; ffmpeg names microseconds both out_time_us and (wrongly) out_time_ms."""
    for key in ("out_time_us", "out_time_ms"):
        value = _number(block.get(key, ""))
        if value is not None and value >= 0:
            return value / 1_000_000
    text = block.get("out_time", "")
    parts = text.split(":")
    if len(parts) == 3:
        hours, minutes, seconds = (_number(part) for part in parts)
        if hours is not None and minutes is not None and seconds is not None and hours >= 0:
            return hours * 3600 + minutes * 60 + seconds
    return None
