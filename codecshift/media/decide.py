"""Decide, from a probe and the library's settings, whether a file is worth converting.

A pure function: the same probe and settings always give the same decision,
and the reason is a sentence a person can read in the dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from codecshift.media.probe import MediaInfo
from codecshift.media.profile import FAMILY_ORDER, MIB, encode_settings, encoder_for, resolution_tier, setting

Action = Literal["transcode", "skip", "approve"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    codec: str
    family: str | None = None
    encoder: str | None = None
    quality: int | None = None
    preset: str | None = None
    tier: str | None = None


def choose_family(preference: str, families: Sequence[str], fallback_to_cpu: bool) -> tuple[str | None, str]:
    """The family to encode on and a note on how it was chosen.

    ``families`` empty means "not known yet": an explicit preference stands,
    "auto" stays open (None) and the dispatcher picks the queue later.
    """
    available = [family for family in FAMILY_ORDER if family in families]
    if preference == "auto":
        if not families:
            return None, "encoder family chosen at dispatch"
        if available:
            return available[0], ""
        return None, "no encoder available for it yet"
    if not families or preference in families:
        return preference, ""
    if fallback_to_cpu and "cpu" in families:
        return "cpu", f"{preference} unavailable, falling back to cpu"
    return None, f"waiting for a node with {preference}"


def video_bitrate(info: MediaInfo) -> int | None:
    """The main video stream's bitrate, or the overall one less the known audio bitrates."""
    video = info.main_video
    if video is None:
        return None
    if video.bit_rate:
        return video.bit_rate
    if not info.bitrate:
        return None
    audio = sum(stream.bit_rate or 0 for stream in info.audio_streams)
    rest = info.bitrate - audio
    return rest if rest > 0 else info.bitrate


def bits_per_pixel(info: MediaInfo) -> float | None:
    """Video bits per pixel per frame: how much room an efficient codec has left."""
    video = info.main_video
    rate = video_bitrate(info)
    if video is None or not rate or not video.pixels or not video.frame_rate:
        return None
    return rate / (video.pixels * video.frame_rate)


def decide(info: MediaInfo | None, settings: Mapping[str, Any], *, size: int, is_symlink: bool = False,
           families: Sequence[str] = ()) -> Decision:
    """Transcode (with family, encoder, quality and preset), skip, or ask for approval."""
    codec = setting(settings, "target_codec")
    if info is None:
        return Decision("skip", "not readable as media", codec)
    video = info.main_video
    if video is None:
        extra = " (only cover art)" if info.cover_art else ""
        return Decision("skip", f"no video stream{extra}", codec)
    if video.pix_fmt is None:
        return Decision("skip", f"the {video.codec or 'unknown'} video cannot be decoded (no pixel format "
                        "found: damaged or unsupported)", codec)
    source = video.codec or "unknown"
    if source == codec:
        return Decision("skip", f"already {codec}, the target codec", codec)
    done = setting(settings, "done_codecs")
    if source in done:
        return Decision("skip", f"{source} is in the done list", codec)
    min_mb = setting(settings, "min_file_size_mb")
    if size < min_mb * MIB:
        return Decision("skip", f"too small: {size / MIB:.1f} MB, the minimum is {min_mb} MB", codec)
    if info.duration is None:
        return Decision("skip", "duration unknown, so the output could not be verified", codec)
    min_seconds = setting(settings, "min_duration_seconds")
    if info.duration < min_seconds:
        return Decision("skip", f"too short: {info.duration:.0f} s, the minimum is {min_seconds} s", codec)
    min_bpp = setting(settings, "min_bits_per_pixel")
    bpp = bits_per_pixel(info)
    if min_bpp > 0 and bpp is not None and bpp < min_bpp:
        return Decision("skip", f"bitrate already low: {bpp:.3f} bits per pixel, below {min_bpp:g}", codec)

    tier = resolution_tier(video.width, video.height)
    family, note = choose_family(setting(settings, "hardware_preference"), families,
                                 setting(settings, "hardware_fallback_to_cpu"))
    what = f"{source} {video.width}x{video.height} ({tier}) to {codec}"
    if family is None:
        encoder = quality = preset = None
        how = note
    else:
        encoder = encoder_for(family, codec)
        quality, preset = encode_settings(settings, family, codec, tier)
        how = f"{encoder} quality {quality} preset {preset}" + (f"; {note}" if note else "")
    if is_symlink:
        return Decision("approve", f"a symlink, awaiting approval: {what}", codec, family, encoder,
                        quality, preset, tier)
    return Decision("transcode", f"{what} with {how}", codec, family, encoder, quality, preset, tier)
