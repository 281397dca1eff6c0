"""Is a file playable from start to end? A full decode with errors only, to the null muxer.

Used on every output before it may replace an original, and by the cluster's
library health checks. Decoding every video and audio frame is the only check
that catches damage in the middle of a file; the demuxer alone reads headers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from codecshift.media.commands import FFMPEG, file_url
from codecshift.media.probe import ProbeError, probe
from codecshift.media.runner import run_ffmpeg


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    message: str
    cancelled: bool = False


def decode_args(path: str | os.PathLike[str]) -> list[str]:
    return [FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-nostats", "-progress", "pipe:1",
            "-i", file_url(path), "-map", "0:v?", "-map", "0:a?", "-f", "null", "-"]


def check_health(path: str | os.PathLike[str], *, should_cancel: Callable[[], bool] | None = None,
                 duration: float | None = None) -> HealthResult:
    """ok with "decoded cleanly", or not ok with the first decoder errors."""
    if duration is None:
        try:
            info = probe(path)
        except ProbeError as exc:
            return HealthResult(False, f"unreadable: {exc.message}")
        duration = info.duration
        if not info.video_streams and not info.audio_streams:
            return HealthResult(False, "no video or audio stream to decode")
    result = run_ffmpeg(decode_args(path), duration=duration, should_cancel=should_cancel)
    if result.cancelled:
        return HealthResult(False, "cancelled", cancelled=True)
    errors = [line.strip() for line in result.log_tail.splitlines() if line.strip()]
    if result.returncode != 0:
        return HealthResult(False, result.error())
    if errors:
        shown = " | ".join(errors[:3])[:500]
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        return HealthResult(False, f"decode errors: {shown}{more}")
    return HealthResult(True, "decoded cleanly")
