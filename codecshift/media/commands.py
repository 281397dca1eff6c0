"""The ffmpeg command for one encode, as a list of arguments (never a shell string).

Shape of every command: encode the main video stream (the largest that is not
cover art) with the family's encoder in constant-quality mode; copy every other
stream (audio, subtitles, attachments, cover art), chapters and metadata; keep
10-bit as 10-bit, the colour tags and, on the CPU encoders when ``hdr`` is
given, the HDR10 mastering display and light levels; crop odd dimensions by one
pixel (4:2:0 needs even ones); keep every timestamp, in the source's own time
base (variable frame rate stays variable). Paths are passed as ``file:`` URLs,
so no name, not even one starting with a dash or holding a colon, is read as an
option or a protocol.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codecshift.media.containers import ContainerChoice, choose_container
from codecshift.media.hdr import HdrMetadata, svtav1_params, x265_params
from codecshift.media.probe import MediaInfo, StreamInfo
from codecshift.media.profile import encode_settings, encoder_for, resolution_tier

__all__ = ["DEFAULT_RENDER_DEVICE", "FFMPEG", "EncodePlan", "build_command", "capability_args",
           "encode_settings", "file_url", "resolution_tier"]

FFMPEG = "ffmpeg"
DEFAULT_RENDER_DEVICE = "/dev/dri/renderD128"
# Codecs NVDEC decodes, with the highest bit depth it takes for each (4:2:0 only).
NVDEC_DEPTH = {"h264": 8, "hevc": 12, "av1": 10, "vp9": 12, "vp8": 8, "mpeg1video": 8, "mpeg2video": 8,
               "mpeg4": 8, "vc1": 8, "wmv3": 8}
# mkvmerge's per-track statistics; stale once the video is re-encoded.
STAT_TAGS = ("BPS", "NUMBER_OF_BYTES", "NUMBER_OF_FRAMES", "_STATISTICS_TAGS", "_STATISTICS_WRITING_APP",
             "_STATISTICS_WRITING_DATE_UTC")
VAAPI_AV1_QINDEX_PER_STEP = 5  # av1_vaapi takes a 0-255 q-index; settings use the 0-51 scale


@dataclass(frozen=True)
class EncodePlan:
    args: list[str]
    encoder: str
    family: str
    codec: str
    quality: int
    preset: str
    container: str  # the muxer
    extension: str
    container_reason: str
    video_output_index: int
    hw_decode: bool = False
    crop: tuple[int, int] | None = None


def file_url(path: str | os.PathLike[str]) -> str:
    return "file:" + os.path.abspath(os.fspath(path))


def build_command(info: MediaInfo, settings: Mapping[str, Any], family: str, codec: str,
                  output_path: str | os.PathLike[str], *, quality: int | None = None,
                  preset: str | None = None, render_device: str = DEFAULT_RENDER_DEVICE,
                  container: ContainerChoice | None = None, hdr: HdrMetadata | None = None) -> EncodePlan:
    """The full argument list (``args[0]`` is the ffmpeg binary) and what it chose."""
    video = info.main_video
    if video is None:
        raise ValueError(f"{info.path}: no video stream to encode")
    encoder = encoder_for(family, codec)
    set_quality, set_preset = encode_settings(settings, family, codec, resolution_tier(video.width, video.height))
    quality = set_quality if quality is None else quality
    preset = set_preset if preset is None else str(preset)
    choice = container or choose_container(info, codec)
    ten_bit = (video.bit_depth or 8) > 8
    crop = _even_crop(video)
    hw_decode = family == "nvenc" and crop is None and _nvdec_can_decode(video)

    kept = [stream for stream in info.streams if stream.type != "data"]
    out = {stream.index: position for position, stream in enumerate(kept)}
    n = out[video.index]

    args = [FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "warning", "-nostats", "-progress", "pipe:1"]
    args += _hw_device_args(family, render_device)
    if hw_decode:
        args += ["-hwaccel", "cuda", "-hwaccel_output_format", "cuda"]
    args += ["-i", file_url(info.path)]
    for stream in kept:
        args += ["-map", f"0:{stream.index}"]
    args += ["-map_metadata", "0", "-map_chapters", "0"]
    for stream in kept:
        if stream.index != video.index:
            args += [f"-c:{out[stream.index]}", choice.subtitle_codecs.get(stream.index, "copy")]
    filters = _filters(family, crop, ten_bit)
    if filters:
        args += [f"-filter:{n}", ",".join(filters)]
    args += [f"-c:{n}", encoder, *_encoder_args(family, codec, n, quality, preset, ten_bit, hw_decode, hdr)]
    args += _colour_args(video, n)
    for key in STAT_TAGS:
        for tag in (key, f"{key}-eng"):
            if tag in video.tags:
                args += [f"-metadata:s:{n}", f"{tag}="]
    if choice.muxer in ("mp4", "mov") and codec == "hevc":
        args += [f"-tag:{n}", "hvc1"]
    # The source's own time base and timestamps: ffmpeg would otherwise round them to 1/framerate,
    # shifting video against audio by up to half a frame and bending variable frame rates.
    args += [f"-enc_time_base:{n}", "-1", "-fps_mode", "passthrough", "-max_muxing_queue_size", "4096",
             "-f", choice.muxer, file_url(output_path)]
    return EncodePlan(args=args, encoder=encoder, family=family, codec=codec, quality=quality, preset=preset,
                      container=choice.muxer, extension=choice.extension, container_reason=choice.reason,
                      video_output_index=n, hw_decode=hw_decode, crop=crop)


def _even_crop(video: StreamInfo) -> tuple[int, int] | None:
    width, height = video.width or 0, video.height or 0
    if width % 2 or height % 2:
        return width - width % 2, height - height % 2
    return None


def _nvdec_can_decode(video: StreamInfo) -> bool:
    """CUDA decoding only where NVDEC handles the codec, depth and 4:2:0 chroma."""
    depth = NVDEC_DEPTH.get(video.codec or "")
    pix_fmt = video.pix_fmt or ""
    is_420 = pix_fmt.startswith(("yuv420p", "nv12", "p010", "yuvj420p"))
    return depth is not None and is_420 and (video.bit_depth or 8) <= depth


def _hw_device_args(family: str, device: str) -> list[str]:
    if family == "qsv":
        return ["-init_hw_device", f"qsv=qsv:hw_any,child_device={device}", "-filter_hw_device", "qsv"]
    if family == "vaapi":
        return ["-init_hw_device", f"vaapi=va:{device}", "-filter_hw_device", "va"]
    return []


def _filters(family: str, crop: tuple[int, int] | None, ten_bit: bool) -> list[str]:
    filters = [f"crop={crop[0]}:{crop[1]}:0:0"] if crop else []
    if family == "qsv":
        filters += [f"format={'p010le' if ten_bit else 'nv12'}", "hwupload=extra_hw_frames=64"]
    elif family == "vaapi":
        filters += [f"format={'p010' if ten_bit else 'nv12'}", "hwupload"]
    return filters


def _encoder_args(family: str, codec: str, n: int, quality: int, preset: str, ten_bit: bool,
                  hw_decode: bool, hdr: HdrMetadata | None) -> list[str]:
    main = "main10" if ten_bit else "main"
    if family == "cpu":
        pix_fmt = "yuv420p10le" if ten_bit else "yuv420p"
        args = [f"-preset:{n}", preset, f"-crf:{n}", str(quality), f"-pix_fmt:{n}", pix_fmt]
        if codec == "hevc":
            x265 = "log-level=error" + (f":{x265_params(hdr)}" if hdr else "")
            args += [f"-profile:{n}", main, f"-x265-params:{n}", x265]
        elif hdr is not None and svtav1_params(hdr):
            args += [f"-svtav1-params:{n}", svtav1_params(hdr)]
        return args
    if family == "nvenc":
        args = [f"-preset:{n}", preset, f"-tune:{n}", "hq", f"-rc:{n}", "vbr", f"-cq:{n}", str(quality),
                f"-b:{n}", "0"]
        if not hw_decode:
            args += [f"-pix_fmt:{n}", "p010le" if ten_bit else "yuv420p"]
        return args + ([f"-profile:{n}", main] if codec == "hevc" else [])
    if family == "qsv":
        args = [f"-preset:{n}", preset, f"-global_quality:{n}", str(quality)]
        return args + ([f"-profile:{n}", main] if codec == "hevc" else [])
    if family == "vaapi":
        if codec == "hevc":
            return [f"-rc_mode:{n}", "CQP", f"-qp:{n}", str(quality), f"-compression_level:{n}", preset,
                    f"-profile:{n}", main]
        return [f"-rc_mode:{n}", "CQP", f"-global_quality:{n}", str(quality * VAAPI_AV1_QINDEX_PER_STEP),
                f"-compression_level:{n}", preset]
    raise ValueError(f"unknown encoder family {family!r}")


def _colour_args(video: StreamInfo, n: int) -> list[str]:
    args: list[str] = []
    for option, value in (("-color_primaries", video.color_primaries), ("-color_trc", video.color_transfer),
                          ("-colorspace", video.color_space), ("-color_range", video.color_range)):
        if value:
            args += [f"{option}:{n}", value]
    return args


def capability_args(encoder: str, family: str, render_device: str = DEFAULT_RENDER_DEVICE) -> list[str]:
    """A three-frame test encode to the null muxer: proves the encoder really opens and encodes."""
    args = [FFMPEG, "-hide_banner", "-nostdin", "-v", "error", *_hw_device_args(family, render_device),
            "-f", "lavfi", "-i", "color=c=black:s=256x256:r=25:d=0.2", "-frames:v", "3"]
    filters = _filters(family, None, False)
    if filters:
        args += ["-vf", ",".join(filters)]
    elif family == "nvenc":
        args += ["-pix_fmt", "yuv420p"]
    return [*args, "-c:v", encoder, "-f", "null", "-"]


def describe(plan: EncodePlan) -> str:
    """One line for logs: encoder, quality, preset and container."""
    parts = [f"{plan.encoder} quality {plan.quality} preset {plan.preset}", f"{plan.container} ({plan.extension})"]
    if plan.hw_decode:
        parts.append("CUDA decoding")
    if plan.crop:
        parts.append(f"cropped to {plan.crop[0]}x{plan.crop[1]}")
    return ", ".join(parts)


def final_path(source: str | os.PathLike[str], extension: str) -> Path:
    """Where the output ends up: the source's path, with the new extension if the container changed."""
    source = Path(source)
    return source if extension == source.suffix else source.with_suffix(extension)
