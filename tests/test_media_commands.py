"""The ffmpeg arguments, pinned for every family x codec x 8/10-bit, and the container choice."""

from __future__ import annotations

from dataclasses import replace

import pytest

from codecshift.media.commands import build_command, capability_args, final_path
from codecshift.media.containers import UnsupportedStream, choose_container
from codecshift.media.probe import MediaInfo, StreamInfo
from codecshift.registry import defaults

OUT = "/media/.codecshift-job7-a1.out.Film (2020).mkv"
HEAD = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "warning", "-nostats", "-progress", "pipe:1"]
INPUT = ["-i", "file:/media/Film (2020).mkv", "-map", "0:0", "-map", "0:1", "-map", "0:2",
         "-map_metadata", "0", "-map_chapters", "0", "-c:1", "copy", "-c:2", "copy"]
SDR = ["-color_primaries:0", "bt709", "-color_trc:0", "bt709", "-colorspace:0", "bt709", "-color_range:0", "tv"]
HDR = ["-color_primaries:0", "bt2020", "-color_trc:0", "smpte2084", "-colorspace:0", "bt2020nc",
       "-color_range:0", "tv"]
TAIL = ["-enc_time_base:0", "-1", "-fps_mode", "passthrough", "-max_muxing_queue_size", "4096", "-f", "matroska",
        f"file:{OUT}"]
CUDA = ["-hwaccel", "cuda", "-hwaccel_output_format", "cuda"]
QSV = ["-init_hw_device", "qsv=qsv:hw_any,child_device=/dev/dri/renderD128", "-filter_hw_device", "qsv"]
VAAPI = ["-init_hw_device", "vaapi=va:/dev/dri/renderD128", "-filter_hw_device", "va"]


def video(ten_bit: bool = False, **changes: object) -> StreamInfo:
    stream = StreamInfo(index=0, type="video", codec="hevc" if ten_bit else "h264", width=1920, height=1080,
                        frame_rate=24.0, pix_fmt="yuv420p10le" if ten_bit else "yuv420p",
                        bit_depth=10 if ten_bit else 8, color_primaries="bt2020" if ten_bit else "bt709",
                        color_transfer="smpte2084" if ten_bit else "bt709",
                        color_space="bt2020nc" if ten_bit else "bt709", color_range="tv",
                        hdr="pq" if ten_bit else None)
    return replace(stream, **changes)


def source(*streams: StreamInfo, path: str = "/media/Film (2020).mkv", container: str = "matroska") -> MediaInfo:
    if not streams:
        streams = (video(), StreamInfo(index=1, type="audio", codec="eac3", language="eng"),
                   StreamInfo(index=2, type="subtitle", codec="subrip", language="eng"))
    return MediaInfo(path=path, size=10**9, container=container, format_name="x", duration=10.0,
                     bitrate=8_000_000, streams=tuple(streams))


def film(ten_bit: bool) -> MediaInfo:
    return source(video(ten_bit), StreamInfo(index=1, type="audio", codec="eac3", language="eng"),
                  StreamInfo(index=2, type="subtitle", codec="subrip", language="eng"))


PINNED = {
    ("cpu", "hevc", False): [*HEAD, *INPUT, "-c:0", "libx265", "-preset:0", "medium", "-crf:0", "24",
                             "-pix_fmt:0", "yuv420p", "-profile:0", "main", "-x265-params:0", "log-level=error",
                             *SDR, *TAIL],
    ("cpu", "hevc", True): [*HEAD, *INPUT, "-c:0", "libx265", "-preset:0", "medium", "-crf:0", "24",
                            "-pix_fmt:0", "yuv420p10le", "-profile:0", "main10", "-x265-params:0",
                            "log-level=error", *HDR, *TAIL],
    ("cpu", "av1", False): [*HEAD, *INPUT, "-c:0", "libsvtav1", "-preset:0", "8", "-crf:0", "30",
                            "-pix_fmt:0", "yuv420p", *SDR, *TAIL],
    ("cpu", "av1", True): [*HEAD, *INPUT, "-c:0", "libsvtav1", "-preset:0", "8", "-crf:0", "30",
                           "-pix_fmt:0", "yuv420p10le", *HDR, *TAIL],
    ("nvenc", "hevc", False): [*HEAD, *CUDA, *INPUT, "-c:0", "hevc_nvenc", "-preset:0", "p5", "-tune:0", "hq",
                               "-rc:0", "vbr", "-cq:0", "26", "-b:0", "0", "-profile:0", "main", *SDR, *TAIL],
    ("nvenc", "hevc", True): [*HEAD, *CUDA, *INPUT, "-c:0", "hevc_nvenc", "-preset:0", "p5", "-tune:0", "hq",
                              "-rc:0", "vbr", "-cq:0", "26", "-b:0", "0", "-profile:0", "main10", *HDR, *TAIL],
    ("nvenc", "av1", False): [*HEAD, *CUDA, *INPUT, "-c:0", "av1_nvenc", "-preset:0", "p5", "-tune:0", "hq",
                              "-rc:0", "vbr", "-cq:0", "32", "-b:0", "0", *SDR, *TAIL],
    ("nvenc", "av1", True): [*HEAD, *CUDA, *INPUT, "-c:0", "av1_nvenc", "-preset:0", "p5", "-tune:0", "hq",
                             "-rc:0", "vbr", "-cq:0", "32", "-b:0", "0", *HDR, *TAIL],
    ("qsv", "hevc", False): [*HEAD, *QSV, *INPUT, "-filter:0", "format=nv12,hwupload=extra_hw_frames=64",
                             "-c:0", "hevc_qsv", "-preset:0", "slow", "-global_quality:0", "24",
                             "-profile:0", "main", *SDR, *TAIL],
    ("qsv", "hevc", True): [*HEAD, *QSV, *INPUT, "-filter:0", "format=p010le,hwupload=extra_hw_frames=64",
                            "-c:0", "hevc_qsv", "-preset:0", "slow", "-global_quality:0", "24",
                            "-profile:0", "main10", *HDR, *TAIL],
    ("qsv", "av1", False): [*HEAD, *QSV, *INPUT, "-filter:0", "format=nv12,hwupload=extra_hw_frames=64",
                            "-c:0", "av1_qsv", "-preset:0", "slow", "-global_quality:0", "28", *SDR, *TAIL],
    ("qsv", "av1", True): [*HEAD, *QSV, *INPUT, "-filter:0", "format=p010le,hwupload=extra_hw_frames=64",
                           "-c:0", "av1_qsv", "-preset:0", "slow", "-global_quality:0", "28", *HDR, *TAIL],
    ("vaapi", "hevc", False): [*HEAD, *VAAPI, *INPUT, "-filter:0", "format=nv12,hwupload", "-c:0", "hevc_vaapi",
                               "-rc_mode:0", "CQP", "-qp:0", "25", "-compression_level:0", "4",
                               "-profile:0", "main", *SDR, *TAIL],
    ("vaapi", "hevc", True): [*HEAD, *VAAPI, *INPUT, "-filter:0", "format=p010,hwupload", "-c:0", "hevc_vaapi",
                              "-rc_mode:0", "CQP", "-qp:0", "25", "-compression_level:0", "4",
                              "-profile:0", "main10", *HDR, *TAIL],
    ("vaapi", "av1", False): [*HEAD, *VAAPI, *INPUT, "-filter:0", "format=nv12,hwupload", "-c:0", "av1_vaapi",
                              "-rc_mode:0", "CQP", "-global_quality:0", "150", "-compression_level:0", "4",
                              *SDR, *TAIL],
    ("vaapi", "av1", True): [*HEAD, *VAAPI, *INPUT, "-filter:0", "format=p010,hwupload", "-c:0", "av1_vaapi",
                             "-rc_mode:0", "CQP", "-global_quality:0", "150", "-compression_level:0", "4",
                             *HDR, *TAIL],
}


@pytest.mark.parametrize(("family", "codec", "ten_bit"), sorted(PINNED))
def test_pinned_arguments(family: str, codec: str, ten_bit: bool) -> None:
    plan = build_command(film(ten_bit), defaults(), family, codec, OUT)
    assert plan.args == PINNED[(family, codec, ten_bit)]
    assert plan.container == "matroska" and plan.extension == ".mkv" and plan.video_output_index == 0
    assert plan.hw_decode == (family == "nvenc")


def test_quality_and_preset_come_from_the_tier_and_can_be_overridden() -> None:
    uhd = source(video(width=3840, height=2160))
    plan = build_command(uhd, defaults(), "cpu", "hevc", OUT)
    assert (plan.quality, plan.preset) == (26, "medium")
    plan = build_command(uhd, defaults(), "cpu", "hevc", OUT, quality=18, preset="slow")
    assert (plan.quality, plan.preset) == (18, "slow")
    assert plan.args[plan.args.index("-crf:0") + 1] == "18" and plan.args[plan.args.index("-preset:0") + 1] == "slow"


def test_main_video_is_the_largest_and_cover_art_and_attachments_are_copied() -> None:
    info = source(StreamInfo(index=0, type="video", codec="mjpeg", width=600, height=600, cover_art=True),
                  StreamInfo(index=1, type="video", codec="h264", width=640, height=360, bit_depth=8,
                             pix_fmt="yuv420p"),
                  StreamInfo(index=2, type="video", codec="mpeg2video", width=1920, height=1080, bit_depth=8,
                             pix_fmt="yuv420p"),
                  StreamInfo(index=3, type="data", codec=None),
                  StreamInfo(index=4, type="attachment", codec=None, filename="font.ttf"))
    plan = build_command(info, defaults(), "cpu", "hevc", OUT)
    args = plan.args
    assert [args[i + 1] for i, a in enumerate(args) if a == "-map"] == ["0:0", "0:1", "0:2", "0:4"]
    assert plan.video_output_index == 2
    assert args[args.index("-c:2") + 1] == "libx265"
    assert [args[args.index(f"-c:{n}") + 1] for n in (0, 1, 3)] == ["copy", "copy", "copy"]


def test_odd_dimensions_are_cropped_and_nvenc_decodes_in_software() -> None:
    odd = source(video(width=1921, height=817))
    cpu = build_command(odd, defaults(), "cpu", "hevc", OUT)
    assert cpu.crop == (1920, 816) and cpu.args[cpu.args.index("-filter:0") + 1] == "crop=1920:816:0:0"
    nvenc = build_command(odd, defaults(), "nvenc", "hevc", OUT)
    assert not nvenc.hw_decode and "-hwaccel" not in nvenc.args
    assert nvenc.args[nvenc.args.index("-pix_fmt:0") + 1] == "yuv420p"
    vaapi = build_command(odd, defaults(), "vaapi", "hevc", OUT)
    assert vaapi.args[vaapi.args.index("-filter:0") + 1] == "crop=1920:816:0:0,format=nv12,hwupload"


@pytest.mark.parametrize(("codec", "pix_fmt", "depth", "cuda"), [
    ("h264", "yuv420p", 8, True), ("h264", "yuv420p10le", 10, False), ("h264", "yuv422p", 8, False),
    ("hevc", "yuv420p10le", 10, True), ("vp9", "yuv420p", 8, True), ("prores", "yuv422p10le", 10, False),
    ("mpeg2video", "yuv420p", 8, True), ("msmpeg4v3", "yuv420p", 8, False),
])
def test_cuda_decoding_only_where_nvdec_can(codec: str, pix_fmt: str, depth: int, cuda: bool) -> None:
    info = source(video(codec=codec, pix_fmt=pix_fmt, bit_depth=depth))
    plan = build_command(info, defaults(), "nvenc", "hevc", OUT)
    assert plan.hw_decode is cuda and ("-hwaccel" in plan.args) is cuda
    assert ("-pix_fmt:0" in plan.args) is not cuda
    if not cuda:
        assert plan.args[plan.args.index("-pix_fmt:0") + 1] == ("p010le" if depth > 8 else "yuv420p")


def test_twelve_bit_becomes_ten_bit_and_unknown_colour_tags_are_left_out() -> None:
    info = source(video(pix_fmt="yuv420p12le", bit_depth=12, codec="hevc", color_primaries=None,
                        color_transfer=None, color_space=None, color_range=None))
    plan = build_command(info, defaults(), "cpu", "hevc", OUT)
    assert plan.args[plan.args.index("-pix_fmt:0") + 1] == "yuv420p10le"
    assert not any(a.startswith(("-color", "-colorspace")) for a in plan.args)


def test_stale_statistics_tags_of_the_video_are_cleared() -> None:
    info = source(video(tags={"BPS": "8000000", "NUMBER_OF_BYTES-eng": "1", "title": "Film"}))
    args = build_command(info, defaults(), "cpu", "hevc", OUT).args
    cleared = [args[i + 1] for i, a in enumerate(args) if a == "-metadata:s:0"]
    assert cleared == ["BPS=", "NUMBER_OF_BYTES-eng="]


def test_mp4_keeps_its_container_with_the_hvc1_tag() -> None:
    info = source(video(), path="/m/clip.m4v", container="mp4")
    plan = build_command(info, defaults(), "cpu", "hevc", "/m/out.m4v")
    assert (plan.container, plan.extension) == ("mp4", ".m4v")
    assert plan.args[plan.args.index("-tag:0") + 1] == "hvc1" and plan.args[-3:] == ["-f", "mp4", "file:/m/out.m4v"]
    assert "-tag:0" not in build_command(info, defaults(), "cpu", "av1", "/m/out.m4v").args


@pytest.mark.parametrize(("container", "path", "codec", "audio", "muxer", "extension", "why"), [
    ("matroska", "/m/a.MKV", "av1", "aac", "matroska", ".MKV", "kept Matroska"),
    ("mp4", "/m/a.mp4", "av1", "aac", "mp4", ".mp4", "kept MP4"),
    ("mov", "/m/a.mov", "hevc", "aac", "mov", ".mov", "kept QuickTime"),
    ("mov", "/m/a.mov", "av1", "aac", "matroska", ".mkv", "changed to Matroska: mov cannot carry av1"),
    ("mpegts", "/m/a.ts", "hevc", "ac3", "mpegts", ".ts", "kept MPEG-TS"),
    ("mpegts", "/m/a.m2ts", "av1", "ac3", "matroska", ".mkv", "changed to Matroska: mpegts cannot carry av1"),
    ("avi", "/m/a.avi", "hevc", "mp3", "matroska", ".mkv", "changed to Matroska: avi cannot carry hevc"),
    ("asf", "/m/a.wmv", "hevc", "wmav2", "matroska", ".mkv", "changed to Matroska: asf cannot carry hevc"),
    ("webm", "/m/a.webm", "av1", "opus", "webm", ".webm", "kept WebM"),
    ("webm", "/m/a.webm", "hevc", "opus", "matroska", ".mkv", "changed to Matroska: WebM cannot carry hevc"),
    ("webm", "/m/a.webm", "av1", "aac", "matroska", ".mkv", "changed to Matroska: WebM cannot carry aac audio"),
])
def test_container_choice(container: str, path: str, codec: str, audio: str, muxer: str, extension: str,
                          why: str) -> None:
    info = source(video(codec="vp9"), StreamInfo(index=1, type="audio", codec=audio), path=path,
                  container=container)
    choice = choose_container(info, codec)
    assert (choice.muxer, choice.extension) == (muxer, extension)
    assert choice.reason.startswith(why)
    assert final_path(path, choice.extension).suffix == extension


def test_text_subtitles_become_subrip_when_the_container_changes() -> None:
    info = source(video(), StreamInfo(index=1, type="subtitle", codec="mov_text", language="eng"),
                  path="/m/a.3gp", container="3gp")
    choice = choose_container(info, "hevc")
    assert choice.subtitle_codecs == {1: "srt"} and "converted to SubRip" in choice.reason
    plan = build_command(info, defaults(), "cpu", "hevc", "/m/out.mkv")
    assert plan.args[plan.args.index("-c:1") + 1] == "srt"


def test_a_stream_no_container_can_take_is_a_clear_error() -> None:
    info = source(video(), StreamInfo(index=1, type="subtitle", codec="dvb_teletext"), path="/m/a.avi",
                  container="avi")
    with pytest.raises(UnsupportedStream, match=r"subtitle stream #1 \(dvb_teletext\) cannot be carried"):
        choose_container(info, "hevc")


def test_names_that_look_like_options_or_protocols_stay_file_paths() -> None:
    info = source(video(), path="/m/-y http:evil 'quoted' \"x\" é.mkv")
    args = build_command(info, defaults(), "cpu", "hevc", "/m/-out.mkv").args
    assert args[args.index("-i") + 1] == "file:/m/-y http:evil 'quoted' \"x\" é.mkv"
    assert args[-1] == "file:/m/-out.mkv"


def test_no_video_stream_is_refused() -> None:
    with pytest.raises(ValueError, match="no video stream"):
        build_command(source(StreamInfo(index=0, type="audio", codec="aac")), defaults(), "cpu", "hevc", OUT)


def test_capability_test_encodes() -> None:
    assert capability_args("libx265", "cpu") == [
        "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
        "color=c=black:s=256x256:r=25:d=0.2", "-frames:v", "3", "-c:v", "libx265", "-f", "null", "-"]
    nvenc = capability_args("hevc_nvenc", "nvenc")
    assert nvenc[-7:] == ["-pix_fmt", "yuv420p", "-c:v", "hevc_nvenc", "-f", "null", "-"]
    qsv = capability_args("av1_qsv", "qsv", "/dev/dri/renderD129")
    assert qsv[5:9] == ["-init_hw_device", "qsv=qsv:hw_any,child_device=/dev/dri/renderD129",
                        "-filter_hw_device", "qsv"]
    assert "format=nv12,hwupload=extra_hw_frames=64" in qsv
    assert "format=nv12,hwupload" in capability_args("hevc_vaapi", "vaapi")
