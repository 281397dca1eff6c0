"""Which container the output goes in.

The source's own container when it can carry the new video codec and every
stream that is copied, Matroska otherwise (it carries nearly anything), with
the reason kept so the job log says why a .avi became a .mkv.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from codecshift.media.probe import MediaInfo

# Subtitle codecs the Matroska muxer stores as they are.
MATROSKA_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "dvd_subtitle", "hdmv_pgs_subtitle",
                      "dvb_subtitle", "arib_caption"}
# Text subtitles Matroska cannot store as they are but holds losslessly as SubRip.
TEXT_TO_SRT = {"mov_text", "text", "subviewer", "subviewer1", "microdvd", "sami", "realtext", "jacosub",
               "mpl2", "pjs", "vplayer", "stl", "eia_608"}
WEBM_AUDIO = {"opus", "vorbis"}
WEBM_SUBTITLES = {"webvtt"}


class UnsupportedStream(ValueError):
    """A stream that no output container we would choose can carry."""


@dataclass(frozen=True)
class ContainerChoice:
    muxer: str  # ffmpeg's -f value
    extension: str  # with the dot, as the final file will be named
    reason: str
    # Source stream index -> subtitle codec it must be converted to (copy otherwise).
    subtitle_codecs: dict[int, str] = field(default_factory=dict)


def choose_container(info: MediaInfo, codec: str) -> ContainerChoice:
    """The container for ``info`` re-encoded to ``codec``, and why."""
    suffix = Path(info.path).suffix
    name = info.container
    if name == "matroska":
        return ContainerChoice("matroska", suffix or ".mkv", f"kept Matroska, which carries {codec}")
    if name == "webm":
        blockers = _webm_blockers(info, codec)
        if not blockers:
            return ContainerChoice("webm", suffix, "kept WebM, which carries AV1 with these streams")
        return _to_matroska(info, f"WebM cannot carry {blockers}")
    if name in ("mp4", "mov") and not (name == "mov" and codec == "av1"):
        label = "MP4" if name == "mp4" else "QuickTime"
        return ContainerChoice(name, suffix, f"kept {label}, which carries {codec}")
    if name == "mpegts" and codec == "hevc":
        return ContainerChoice("mpegts", suffix, "kept MPEG-TS, which carries hevc")
    return _to_matroska(info, f"{name} cannot carry {codec} reliably")


def _webm_blockers(info: MediaInfo, codec: str) -> str:
    if codec != "av1":
        return codec
    for stream in info.streams:
        if stream.type == "audio" and stream.codec not in WEBM_AUDIO:
            return f"{stream.codec} audio"
        if stream.type == "subtitle" and stream.codec not in WEBM_SUBTITLES:
            return f"{stream.codec} subtitles"
        if stream.type == "attachment" or stream.cover_art:
            return "attachments"
    return ""


def _to_matroska(info: MediaInfo, why: str) -> ContainerChoice:
    conversions: dict[int, str] = {}
    for stream in info.subtitle_streams:
        if stream.codec in MATROSKA_SUBTITLES:
            continue
        if stream.codec in TEXT_TO_SRT:
            conversions[stream.index] = "srt"
            continue
        raise UnsupportedStream(f"subtitle stream #{stream.index} ({stream.codec}) cannot be carried "
                                f"in Matroska, and {why}")
    extra = f"; text subtitles converted to SubRip: {sorted(conversions)}" if conversions else ""
    return ContainerChoice("matroska", ".mkv", f"changed to Matroska: {why}{extra}", conversions)
