"""Describe a media file: container, streams, chapters, attachments.

Probing is on the hot path of every library scan, so it runs in-process with
PyAV (about 1 ms a file) rather than spawning ffprobe (about 50 ms). Anything
that is not readable media becomes a ``ProbeError`` carrying the demuxer's own
message, never an exception of another kind.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.logging

# FFmpeg's enum values (libavutil/pixfmt.h) to the names its options accept.
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
             9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22"}
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
             14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
MATRICES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
            9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
            13: "chroma-derived-c", 14: "ictcp"}
RANGES = {1: "tv", 2: "pc"}
HDR_TRANSFERS = {"smpte2084": "pq", "arib-std-b67": "hlg"}

_MOV_EXTENSIONS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".3gp": "3gp", ".3g2": "3g2"}
_DEMUXER_NAMES = {"matroska,webm": "matroska", "mpegts": "mpegts", "avi": "avi", "asf": "asf",
                  "flv": "flv", "mpeg": "mpeg", "ogg": "ogg", "rm": "rm", "mpegtsraw": "mpegts"}


class ProbeError(Exception):
    """The file cannot be read as media; ``message`` is what the demuxer said."""

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        super().__init__(f"{os.fspath(path)}: {message}")
        self.path = os.fspath(path)
        self.message = message


@dataclass(frozen=True)
class StreamInfo:
    """One stream; the video-only and audio-only fields stay None elsewhere."""

    index: int
    type: str  # video | audio | subtitle | attachment | data
    codec: str | None
    profile: str | None = None
    language: str | None = None
    title: str | None = None
    default: bool = False
    forced: bool = False
    cover_art: bool = False
    bit_rate: int | None = None
    channels: int | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    pix_fmt: str | None = None
    bit_depth: int | None = None
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_space: str | None = None
    color_range: str | None = None
    hdr: str | None = None  # pq | hlg
    filename: str | None = None  # attachments
    mimetype: str | None = None
    tags: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    """Everything the engine needs to know about a file, as plain data."""

    path: str
    size: int
    container: str  # short name: matroska, webm, mp4, mov, mpegts, avi, ...
    format_name: str  # the demuxer's name list, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float | None
    bitrate: int | None
    streams: tuple[StreamInfo, ...]
    chapters: tuple[Chapter, ...] = ()

    def of_type(self, kind: str) -> list[StreamInfo]:
        return [stream for stream in self.streams if stream.type == kind]

    @property
    def video_streams(self) -> list[StreamInfo]:
        """Real video streams: attached cover art is not one."""
        return [s for s in self.streams if s.type == "video" and not s.cover_art]

    @property
    def cover_art(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.type == "video" and s.cover_art]

    @property
    def audio_streams(self) -> list[StreamInfo]:
        return self.of_type("audio")

    @property
    def subtitle_streams(self) -> list[StreamInfo]:
        return self.of_type("subtitle")

    @property
    def attachments(self) -> list[StreamInfo]:
        return self.of_type("attachment")

    @property
    def main_video(self) -> StreamInfo | None:
        """The largest video stream that is not cover art (first one on a tie)."""
        best: StreamInfo | None = None
        for stream in self.video_streams:
            if best is None or stream.pixels > best.pixels:
                best = stream
        return best

    @property
    def video_position(self) -> int | None:
        """The main video's position among video streams, cover art included (``-map 0:v:N``)."""
        main = self.main_video
        if main is None:
            return None
        return [stream.index for stream in self.of_type("video")].index(main.index)

    def summary(self) -> dict[str, Any]:
        """Exactly the probe columns of ``media_files``."""
        video = self.main_video
        return {
            "container": self.container,
            "video_codec": video.codec if video else None,
            "width": video.width if video else None,
            "height": video.height if video else None,
            "bit_depth": video.bit_depth if video else None,
            "hdr": video.hdr if video else None,
            "duration": self.duration,
            "bitrate": self.bitrate,
            "audio_streams": len(self.audio_streams),
            "subtitle_streams": len(self.subtitle_streams),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the API and the job log."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaInfo:
        values = dict(data)
        values["streams"] = tuple(StreamInfo(**stream) for stream in data.get("streams", ()))
        values["chapters"] = tuple(Chapter(**chapter) for chapter in data.get("chapters", ()))
        return cls(**values)


def _enable_demuxer_messages() -> None:
    """PyAV only appends FFmpeg's last error line to exceptions when its logging is on.

    The lines themselves then reach Python's ``libav`` logger; ProbeError already
    carries the one that matters, so a scan of broken files does not flood the log
    unless the application configured that logger itself.
    """
    if av.logging.get_level() is None:
        libav = logging.getLogger("libav")
        if not libav.handlers:
            libav.addHandler(logging.NullHandler())
            libav.propagate = False
        av.logging.set_level(av.logging.ERROR)


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Open ``path`` with the demuxer and describe it; ProbeError for anything unreadable."""
    path = os.fspath(path)
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ProbeError(path, exc.strerror or str(exc)) from None
    if not os.path.isfile(path):
        raise ProbeError(path, "not a regular file")
    if stat.st_size == 0:
        raise ProbeError(path, "empty file (0 bytes)")
    _enable_demuxer_messages()
    try:
        container = av.open(path, mode="r")
    except av.FFmpegError as exc:
        raise ProbeError(path, _ffmpeg_message(exc)) from None
    except (OSError, ValueError, UnicodeError) as exc:
        raise ProbeError(path, str(exc)) from None
    try:
        return _describe(container, path, stat.st_size)
    except av.FFmpegError as exc:
        raise ProbeError(path, _ffmpeg_message(exc)) from None
    finally:
        container.close()


def _ffmpeg_message(exc: av.FFmpegError) -> str:
    """'Invalid data found when processing input ([matroska,webm] EBML header parsing failed)'."""
    text = exc.strerror or str(exc)
    log = getattr(exc, "log", None)
    if log and len(log) == 3 and log[2]:
        origin = f"[{log[1]}] " if log[1] else ""
        text = f"{text} ({origin}{log[2].strip()})"
    return text


def _describe(container: Any, path: str, size: int) -> MediaInfo:
    streams = tuple(_stream(stream) for stream in container.streams)
    duration = container.duration / 1_000_000 if container.duration else None
    if duration is None:
        known = [float(s.duration * s.time_base) for s in container.streams if s.duration and s.time_base]
        duration = max(known) if known else None
    bitrate = container.bit_rate or (int(size * 8 / duration) if duration else None)
    chapters = tuple(
        Chapter(start=float(ch["start"] * ch["time_base"]), end=float(ch["end"] * ch["time_base"]),
                title=(ch.get("metadata") or {}).get("title"))
        for ch in container.chapters())
    return MediaInfo(path=path, size=size, container=container_name(container.format.name, path),
                     format_name=container.format.name, duration=duration, bitrate=bitrate or None,
                     streams=streams, chapters=chapters)


def container_name(format_name: str, path: str) -> str:
    """A short container name; the demuxer does not tell mp4 from mov or mkv from webm."""
    ext = Path(path).suffix.lower()
    if format_name.startswith("mov,"):
        return _MOV_EXTENSIONS.get(ext, "mp4")
    if format_name == "matroska,webm":
        return "webm" if ext == ".webm" else "matroska"
    return _DEMUXER_NAMES.get(format_name, format_name.split(",")[0])


def _stream(stream: Any) -> StreamInfo:
    metadata = {str(k): str(v) for k, v in (stream.metadata or {}).items()}
    disposition = int(stream.disposition)
    flags = av.stream.Disposition
    kind = stream.type if stream.type in ("video", "audio", "subtitle", "attachment") else "data"
    context = stream.codec_context if kind in ("video", "audio", "subtitle") else None
    common: dict[str, Any] = {
        "index": stream.index, "type": kind, "codec": context.codec.canonical_name if context else None,
        "profile": getattr(stream, "profile", None) or None,
        "language": _language(metadata.get("language")), "title": metadata.get("title") or None,
        "default": bool(disposition & flags.default), "forced": bool(disposition & flags.forced),
        "tags": metadata,
    }
    if kind == "attachment":
        return StreamInfo(**common, filename=metadata.get("filename"), mimetype=metadata.get("mimetype"))
    if context is None:
        return StreamInfo(**common)
    common["bit_rate"] = context.bit_rate or _tag_bitrate(metadata)
    if kind == "audio":
        return StreamInfo(**common, channels=context.channels or None)
    if kind != "video":
        return StreamInfo(**common)
    fmt = context.format
    depth = max((c.bits for c in fmt.components), default=0) if fmt is not None else 0
    transfer = TRANSFERS.get(int(context.color_trc))
    rate = stream.average_rate or stream.guessed_rate
    return StreamInfo(
        **common, cover_art=bool(disposition & flags.attached_pic), channels=None,
        width=context.width or None, height=context.height or None,
        frame_rate=float(rate) if isinstance(rate, Fraction | int) and rate else None,
        pix_fmt=fmt.name if fmt is not None else None, bit_depth=depth or None,
        color_primaries=PRIMARIES.get(int(context.color_primaries)), color_transfer=transfer,
        color_space=MATRICES.get(int(context.colorspace)), color_range=RANGES.get(int(context.color_range)),
        hdr=HDR_TRANSFERS.get(transfer or ""))


def _language(value: str | None) -> str | None:
    return None if not value or value == "und" else value


def _tag_bitrate(metadata: dict[str, str]) -> int | None:
    """mkvmerge writes per-track statistics tags; ffmpeg leaves bit_rate empty there."""
    for key in ("BPS", "BPS-eng"):
        value = metadata.get(key, "")
        if value.isdigit():
            return int(value)
    return None
