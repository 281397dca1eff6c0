"""Probing real files in-process: every stream described, broken files as ProbeError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect as sa_inspect

from codecshift.media.probe import MediaInfo, ProbeError, probe
from codecshift.models import MediaFile
from support.media import find_font, make_audio_with_cover, make_clip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def rich_clip(clip_cache: Path) -> Path:
    """Two audio languages, two subtitle languages, chapters and an attached font."""
    return make_clip(clip_cache / "rich.mkv", audio_languages=("eng", "fre"), subtitle_languages=("eng", "ger"),
                     chapters=True, font=find_font())


def test_describes_every_stream_chapter_and_attachment(rich_clip: Path) -> None:
    info = probe(rich_clip)
    assert info.container == "matroska" and info.format_name == "matroska,webm"
    assert info.duration == pytest.approx(1.0, abs=0.1)
    assert info.bitrate and info.bitrate > 0 and info.size == rich_clip.stat().st_size
    kinds = [stream.type for stream in info.streams]
    assert kinds == ["video", "audio", "audio", "subtitle", "subtitle", "attachment"]
    video = info.main_video
    assert video is not None and (video.codec, video.width, video.height) == ("h264", 160, 90)
    assert video.frame_rate == 25 and video.pix_fmt == "yuv420p" and video.bit_depth == 8
    assert video.hdr is None and video.cover_art is False and video.profile
    assert [s.language for s in info.audio_streams] == ["eng", "fre"]
    assert [s.channels for s in info.audio_streams] == [1, 1]
    assert [s.language for s in info.subtitle_streams] == ["eng", "ger"]
    assert [s.default for s in info.audio_streams] == [True, False]
    assert [s.forced for s in info.subtitle_streams] == [False, False]
    font = info.attachments[0]
    assert font.filename == find_font().name and font.mimetype == "application/x-truetype-font"
    assert [(c.start, c.end, c.title) for c in info.chapters] == [(0.0, 0.5, "One"), (0.5, 1.0, "Two")]


def test_ten_bit_hdr_is_recognised(clip_cache: Path) -> None:
    clip = make_clip(clip_cache / "hdr10.mkv", vcodec="libx265", pix_fmt="yuv420p10le", hdr=True,
                     extra_video_args=("-x265-params", "log-level=error"))
    video = probe(clip).main_video
    assert video is not None
    assert (video.codec, video.bit_depth, video.hdr) == ("hevc", 10, "pq")
    assert (video.color_primaries, video.color_transfer, video.color_space) == ("bt2020", "smpte2084", "bt2020nc")


def test_cover_art_is_not_the_main_video(tmp_path: Path) -> None:
    info = probe(make_audio_with_cover(tmp_path / "song.mp3"))
    assert info.main_video is None and len(info.cover_art) == 1 and info.cover_art[0].codec == "mjpeg"
    assert info.summary()["video_codec"] is None and info.summary()["audio_streams"] == 1


def test_summary_has_exactly_the_media_file_columns(h264_clip: Path) -> None:
    summary = probe(h264_clip).summary()
    columns = {column.key for column in sa_inspect(MediaFile).columns}
    assert set(summary) == {"container", "video_codec", "width", "height", "bit_depth", "hdr", "duration",
                            "bitrate", "audio_streams", "subtitle_streams"}
    assert set(summary) <= columns
    assert summary["video_codec"] == "h264" and summary["audio_streams"] == 1


def test_round_trips_through_a_dict(rich_clip: Path) -> None:
    info = probe(rich_clip)
    assert MediaInfo.from_dict(info.to_dict()) == info


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("empty.mkv", b"", "empty file"),
    ("notes.mkv", b"these are my notes, not a film\n" * 20, "Invalid data"),
    ("random.mp4", bytes(range(256)) * 40, "Invalid data"),
])
def test_non_media_is_a_probe_error_with_the_demuxers_message(tmp_path: Path, name: str, content: bytes,
                                                              expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ProbeError) as caught:
        probe(path)
    assert expected in caught.value.message and caught.value.path == str(path)
    assert path.read_bytes() == content


def test_truncated_file_is_a_probe_error(tmp_path: Path, h264_clip: Path) -> None:
    path = tmp_path / "cut.mkv"
    path.write_bytes(h264_clip.read_bytes()[:600])
    with pytest.raises(ProbeError) as caught:
        probe(path)
    assert "Input/output error" in caught.value.message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="No such file"):
        probe(tmp_path / "nope.mkv")
    with pytest.raises(ProbeError, match="not a regular file"):
        probe(tmp_path)


def test_unreadable_file_as_another_user(tmp_path: Path, h264_clip: Path) -> None:
    """Root reads anything, so the child drops to nobody (after importing) to probe a 0600 file."""
    path = tmp_path / "locked.mkv"
    path.write_bytes(h264_clip.read_bytes())
    path.chmod(0o600)
    tmp_path.chmod(0o755)
    code = ("import os, sys\nfrom codecshift.media.probe import probe, ProbeError\n"
            "if os.geteuid() == 0:\n    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            "try:\n    probe(sys.argv[1])\nexcept ProbeError as exc:\n    print('ProbeError:', exc.message)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                            check=False, cwd=ROOT)
    assert result.stdout.strip() == "ProbeError: Permission denied", result.stderr
