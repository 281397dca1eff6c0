"""Bad and awkward input, one test each, through the real pipeline with real ffmpeg.

The rule every test checks: the source is byte-identical afterwards unless it was replaced by
a verified output, and no temporary file is left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from codecshift.media.pipeline import Hooks, TranscodeRequest, TranscodeResult, transcode_file
from codecshift.media.probe import probe
from codecshift.media.tempfiles import find_artifacts
from support.media import (
    fast_settings,
    find_font,
    frame_times,
    make_audio_with_cover,
    make_clip,
    make_odd_clip,
    make_vfr_clip,
)

ROOT = Path(__file__).resolve().parent.parent


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(path: Path, hooks: Hooks | None = None, **settings: object) -> TranscodeResult:
    request = TranscodeRequest(source=path, settings=fast_settings(**settings), family="cpu", codec="hevc",
                               decide=True)
    return transcode_file(request, hooks)


def assert_untouched(path: Path, before: str, result: TranscodeResult) -> None:
    assert result.status != "done", result
    assert digest(path) == before
    assert find_artifacts(path.parent) == []


def assert_replaced(path: Path, result: TranscodeResult) -> None:
    assert result.status == "done", result.reason
    assert result.output_path == str(path) and find_artifacts(path.parent) == []
    assert [p.name for p in path.parent.iterdir() if p.suffix in (".mkv", ".mp4")] == [path.name]
    assert probe(path).main_video.codec == "hevc"


def test_zero_byte_file(media_dir: Path) -> None:
    path = media_dir / "empty.mkv"
    path.touch()
    result = run(path)
    assert (result.status, result.code) == ("failed", "probe_error") and "empty file" in result.reason
    assert_untouched(path, digest(path), result)


def test_text_file_named_mkv(media_dir: Path) -> None:
    path = media_dir / "notes.mkv"
    path.write_text("shopping list: milk, eggs\n" * 50)
    before = digest(path)
    result = run(path)
    assert result.code == "probe_error" and "EBML header parsing failed" in result.reason
    assert_untouched(path, before, result)


@pytest.mark.parametrize(("cut", "code", "why"), [
    (600, "probe_error", "not readable as media"),
    (1000, "decided_skip", "cannot be decoded"),
    (0.3, "verify_failed", "duration"),
])
def test_truncated_file(media_dir: Path, clip_cache: Path, cut: float, code: str, why: str) -> None:
    whole = make_clip(clip_cache / "two-seconds.mkv", duration=2.0)
    path = media_dir / "cut.mkv"
    data = whole.read_bytes()
    path.write_bytes(data[:int(cut if cut > 1 else len(data) * cut)])
    before = digest(path)
    result = run(path)
    assert result.code == code and why in result.reason, result
    assert_untouched(path, before, result)


def test_no_video_stream(media_dir: Path) -> None:
    path = media_dir / "radio.mka"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(path)],
                   check=True)
    before = digest(path)
    result = run(path)
    assert (result.status, result.reason) == ("skipped", "no video stream")
    assert_untouched(path, before, result)


def test_audio_file_with_cover_art(media_dir: Path) -> None:
    path = make_audio_with_cover(media_dir / "song.mp3")
    before = digest(path)
    result = run(path)
    assert (result.status, result.reason) == ("skipped", "no video stream (only cover art)")
    assert_untouched(path, before, result)


def test_ten_bit_hdr_source_stays_ten_bit_hdr(media_dir: Path) -> None:
    path = make_clip(media_dir / "hdr.mkv", pix_fmt="yuv420p10le", hdr=True)
    assert probe(path).main_video.codec == "h264"
    result = run(path)
    assert_replaced(path, result)
    video = probe(path).main_video
    assert (video.bit_depth, video.hdr, video.profile) == (10, "pq", "Main 10")
    assert (video.color_primaries, video.color_transfer, video.color_space) == ("bt2020", "smpte2084", "bt2020nc")


def test_several_audio_and_subtitle_tracks_chapters_and_a_font(media_dir: Path) -> None:
    path = make_clip(media_dir / "rich.mkv", audio_languages=("eng", "fre", "jpn"),
                     subtitle_languages=("eng", "ger"), chapters=True, font=find_font())
    before = probe(path)
    result = run(path)
    assert_replaced(path, result)
    after = probe(path)
    assert [s.language for s in after.audio_streams] == ["eng", "fre", "jpn"]
    assert [s.codec for s in after.audio_streams] == [s.codec for s in before.audio_streams]
    assert [s.language for s in after.subtitle_streams] == ["eng", "ger"]
    assert [(c.start, c.end, c.title) for c in after.chapters] == [(c.start, c.end, c.title) for c in before.chapters]
    assert [a.filename for a in after.attachments] == [find_font().name]
    assert [s.default for s in after.audio_streams] == [s.default for s in before.audio_streams]


def test_odd_width_and_height(media_dir: Path) -> None:
    path = make_odd_clip(media_dir / "odd.mkv")
    result = run(path)
    assert_replaced(path, result)
    video = probe(path).main_video
    assert (video.width, video.height) == (160, 90)


def test_variable_frame_rate_keeps_its_timestamps(media_dir: Path) -> None:
    path = make_vfr_clip(media_dir / "vfr.mkv")
    before = frame_times(path)
    result = run(path)
    assert_replaced(path, result)
    after = frame_times(path)
    assert after == before  # every frame at its own time: the 0.84 s frame still lasts 0.84 s


@pytest.mark.parametrize("name", ["-i leading dash.mkv", "it's a \"quoted\" name.mkv", "été ü 映画 🎬.mkv",
                                  "colon: http:part two.mkv"])
def test_names_with_spaces_quotes_unicode_and_a_leading_dash(copy_clip, name: str) -> None:
    path = copy_clip(name)
    result = run(path)
    assert_replaced(path, result)


def test_read_only_folder(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    before = digest(path)
    subprocess.run(["chattr", "+i", str(path.parent)], check=True)  # read-only even for root
    try:
        result = run(path)
    finally:
        subprocess.run(["chattr", "-i", str(path.parent)], check=True)
    assert (result.status, result.code) == ("failed", "not_writable")
    assert "cannot write beside the source" in result.reason and "not permitted" in result.reason
    assert_untouched(path, before, result)


def test_source_changed_during_the_encode(copy_clip) -> None:
    path = copy_clip("movie.mkv")

    def someone_edits_it() -> bool:
        with path.open("ab") as handle:
            handle.write(b"new tags written by a tagger")
        return False

    calls = iter([someone_edits_it])
    result = run(path, Hooks(should_cancel=lambda: next(calls, lambda: False)()))
    assert (result.status, result.code) == ("failed", "source_changed")
    assert path.read_bytes().endswith(b"new tags written by a tagger")
    assert find_artifacts(path.parent) == []


def test_disk_full_during_the_encode(copy_clip) -> None:
    """RLIMIT_FSIZE stands in for a full disk: ffmpeg cannot write past 8 KiB."""
    path = copy_clip("movie.mkv")
    before = digest(path)
    code = textwrap.dedent(f"""
        import json, resource, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from support.media import fast_settings
        from codecshift.media.pipeline import TranscodeRequest, transcode_file
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
        result = transcode_file(TranscodeRequest(Path(sys.argv[1]), fast_settings(), family="cpu", codec="hevc"))
        print(json.dumps(result.to_dict()))
    """)
    child = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT,
                           check=True)
    result = json.loads(child.stdout)
    assert (result["status"], result["code"]) == ("failed", "disk_full")
    assert "file size limit" in result["reason"]
    assert digest(path) == before and find_artifacts(path.parent) == []


def test_ffmpeg_killed_mid_run(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    before = digest(path)

    def kill_ffmpeg() -> bool:
        for child in psutil.Process().children():
            if child.name() == "ffmpeg":
                child.kill()
        return False

    result = run(path, Hooks(should_cancel=kill_ffmpeg))
    assert (result.status, result.code) == ("failed", "encode_error")
    assert result.reason == "ffmpeg was killed by SIGKILL"
    assert_untouched(path, before, result)


def test_a_symlink_waits_for_approval(copy_clip) -> None:
    target = copy_clip("real.mkv")
    link = target.with_name("link.mkv")
    link.symlink_to(target)
    before = digest(target)
    result = run(link)
    assert (result.status, result.code) == ("skipped", "approval_needed")
    assert digest(target) == before and link.is_symlink()
    approved = transcode_file(TranscodeRequest(source=link, settings=fast_settings(), family="cpu", codec="hevc",
                                               allow_symlink=True))
    assert approved.status == "done" and link.is_symlink() and probe(link).main_video.codec == "hevc"


def test_unexpected_hook_errors_end_failed_and_clean(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    before = digest(path)

    def broken(_stage: str) -> None:
        if _stage == "verifying":
            raise RuntimeError("the dashboard answered 500")

    result = run(path, Hooks(on_stage=broken))
    assert (result.status, result.code) == ("failed", "internal_error") and "500" in result.reason
    assert_untouched(path, before, result)


def test_source_folder_gone(tmp_path: Path) -> None:
    result = run(tmp_path / "gone" / "movie.mkv")
    assert (result.status, result.code) == ("failed", "source_missing")


def test_copy_keeps_original_permissions(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    os.chmod(path, 0o640)
    assert_replaced(path, run(path))
    assert path.stat().st_mode & 0o777 == 0o640
    shutil.rmtree(path.parent)
