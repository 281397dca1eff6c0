"""Check an encoded output before it may replace its source.

Cheap checks first (the output's structure against the source's, then its
size), the expensive ones last (a full decode, then the optional quality
score), so a file that would be rejected anyway costs as little as possible.
Every failed check names what differs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from codecshift.media.healthcheck import check_health
from codecshift.media.probe import MediaInfo, ProbeError, StreamInfo, probe
from codecshift.media.profile import setting
from codecshift.media.quality import QualityUnavailable, has_libvmaf, measure

Status = Literal["ok", "failed", "not_smaller", "cancelled"]


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str
    output: MediaInfo | None = None
    quality_metric: str | None = None
    quality_score: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _languages(streams: list[StreamInfo]) -> list[str]:
    return [stream.language or "und" for stream in streams]


def compare_structure(source: MediaInfo, output: MediaInfo, codec: str, tolerance: float) -> list[str]:
    """Everything that differs where it must not; empty when the output keeps it all."""
    problems: list[str] = []
    video, new = source.main_video, output.main_video
    if new is None:
        return ["the output has no video stream"]
    if new.codec != codec:
        problems.append(f"video codec is {new.codec}, expected {codec}")
    if video is not None and (video.bit_depth or 8) > 8 and (new.bit_depth or 8) <= 8:
        problems.append(f"{video.bit_depth}-bit source became {new.bit_depth or 8}-bit")
    if video is not None and video.hdr != new.hdr:
        problems.append(f"HDR transfer changed from {video.hdr or 'none'} to {new.hdr or 'none'}")
    if source.duration is None or output.duration is None:
        problems.append("duration unknown")
    elif abs(source.duration - output.duration) > tolerance:
        problems.append(f"duration {output.duration:.2f} s differs from the source's {source.duration:.2f} s "
                        f"by more than {tolerance:g} s")
    for label, before, after in (("audio", source.audio_streams, output.audio_streams),
                                 ("subtitle", source.subtitle_streams, output.subtitle_streams)):
        if len(before) != len(after):
            problems.append(f"{len(after)} {label} streams, the source has {len(before)}")
        elif _languages(before) != _languages(after):
            problems.append(f"{label} languages {_languages(after)} differ from {_languages(before)}")
    names_before = sorted(s.filename or "" for s in source.attachments)
    names_after = sorted(s.filename or "" for s in output.attachments)
    if names_before != names_after:
        problems.append(f"attachments {names_after} differ from the source's {names_before}")
    if len(source.cover_art) != len(output.cover_art):
        problems.append(f"{len(output.cover_art)} cover images, the source has {len(source.cover_art)}")
    if len(source.chapters) != len(output.chapters):
        problems.append(f"{len(output.chapters)} chapters, the source has {len(source.chapters)}")
    return problems


def saving_problem(source_size: int, output_size: int, min_saving_percent: int) -> str | None:
    """Why the output does not save enough, or None when it does."""
    limit = source_size * (100 - min_saving_percent) / 100
    if output_size <= limit and output_size < source_size:
        return None
    saved = (1 - output_size / source_size) * 100 if source_size else 0.0
    return (f"not smaller: the output saves {saved:.1f}% ({output_size} of {source_size} bytes), "
            f"less than the minimum {min_saving_percent}%")


def verify_output(source: MediaInfo, output_path: str | os.PathLike[str], settings: Mapping[str, Any],
                  codec: str, *, source_size: int,
                  should_cancel: Callable[[], bool] | None = None) -> Verdict:
    """Run every check in order; the first failure decides."""
    try:
        output = probe(output_path)
    except ProbeError as exc:
        return Verdict("failed", f"the output is unreadable: {exc.message}")
    problems = compare_structure(source, output, codec, setting(settings, "duration_tolerance_seconds"))
    if problems:
        return Verdict("failed", "verification failed: " + "; ".join(problems), output)
    not_smaller = saving_problem(source_size, output.size, setting(settings, "min_saving_percent"))
    if not_smaller:
        return Verdict("not_smaller", not_smaller, output)
    health = check_health(output_path, should_cancel=should_cancel, duration=output.duration)
    if health.cancelled:
        return Verdict("cancelled", "cancelled", output)
    if not health.ok:
        return Verdict("failed", f"the output does not decode cleanly: {health.message}", output)
    return _quality(source, output, settings, should_cancel)


def _quality(source: MediaInfo, output: MediaInfo, settings: Mapping[str, Any],
             should_cancel: Callable[[], bool] | None) -> Verdict:
    metric = setting(settings, "quality_metric")
    floor = setting(settings, "quality_floor")
    if metric == "none":
        return Verdict("ok", "verified", output)
    notes: tuple[str, ...] = ()
    if metric == "vmaf" and not has_libvmaf():
        if floor > 0:
            return Verdict("failed", f"a VMAF floor of {floor:g} is set but VMAF is unavailable: this "
                           "ffmpeg build has no libvmaf", output)
        metric, notes = "ssim", ("VMAF unavailable (this ffmpeg build has no libvmaf); SSIM recorded instead",)
    try:
        score = measure(metric, source, output, should_cancel=should_cancel)
    except (QualityUnavailable, RuntimeError) as exc:
        return Verdict("failed", str(exc), output, notes=notes)
    if score is None:
        return Verdict("cancelled", "cancelled", output)
    if floor > 0 and score.score < floor:
        return Verdict("failed", f"{metric.upper()} {score.score:.4g} is below the floor {floor:g}", output,
                       metric, score.score, notes)
    return Verdict("ok", f"verified, {metric.upper()} {score.score:.4g}", output, metric, score.score, notes)
