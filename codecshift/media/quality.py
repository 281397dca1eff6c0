"""Compare an output with its source: SSIM always, VMAF where ffmpeg has libvmaf.

This ffmpeg build (Debian's 5.1) has no libvmaf; asking for VMAF there is
answered with a clear "unavailable" rather than a made-up number.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from codecshift.media.commands import FFMPEG, file_url
from codecshift.media.probe import MediaInfo
from codecshift.media.runner import run_ffmpeg

_SSIM_RE = re.compile(r"SSIM .*All:([0-9.]+)")
_VMAF_RE = re.compile(r"VMAF score[:=]\s*([0-9.]+)")


class QualityUnavailable(Exception):
    """The metric cannot be measured with this ffmpeg."""


@dataclass(frozen=True)
class QualityScore:
    metric: str  # ssim | vmaf
    score: float


@functools.cache
def has_libvmaf() -> bool:
    try:
        listing = subprocess.run([FFMPEG, "-hide_banner", "-filters"], capture_output=True, text=True,
                                 timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(line.split()[1:2] == ["libvmaf"] for line in listing.splitlines())


def quality_args(metric: str, source: MediaInfo, output: MediaInfo) -> list[str]:
    out_video, src_video = output.main_video, source.main_video
    if out_video is None or src_video is None:
        raise ValueError("both files need a video stream")
    fmt = "yuv420p10le" if (src_video.bit_depth or 8) > 8 else "yuv420p"
    width, height = out_video.width, out_video.height
    reference = f"[1:v:{source.video_position}]crop={width}:{height}:0:0,format={fmt},setpts=PTS-STARTPTS[ref]"
    distorted = f"[0:v:{output.video_position}]format={fmt},setpts=PTS-STARTPTS[dist]"
    compare = "[dist][ref]ssim" if metric == "ssim" else "[dist][ref]libvmaf"
    return [FFMPEG, "-hide_banner", "-nostdin", "-v", "info", "-nostats", "-progress", "pipe:1",
            "-i", file_url(output.path), "-i", file_url(source.path),
            "-filter_complex", f"{distorted};{reference};{compare}", "-f", "null", "-"]


def measure(metric: str, source: MediaInfo, output: MediaInfo, *,
            should_cancel: Callable[[], bool] | None = None) -> QualityScore | None:
    """The score, or None when cancelled; QualityUnavailable for VMAF without libvmaf."""
    if metric not in ("ssim", "vmaf"):
        raise ValueError(f"unknown quality metric {metric!r}")
    if metric == "vmaf" and not has_libvmaf():
        raise QualityUnavailable("VMAF is unavailable: this ffmpeg build has no libvmaf")
    result = run_ffmpeg(quality_args(metric, source, output), duration=output.duration,
                        should_cancel=should_cancel)
    if result.cancelled:
        return None
    pattern = _SSIM_RE if metric == "ssim" else _VMAF_RE
    match = None
    for line in result.log_tail.splitlines():
        match = pattern.search(line) or match
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"{metric.upper()} measurement failed: {result.error()}")
    return QualityScore(metric, float(match.group(1)))
