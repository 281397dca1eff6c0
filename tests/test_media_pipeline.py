"""The whole single-file pipeline with the real CPU encoders, and the health check."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codecshift.media.faults import ENV, EXIT_CODE
from codecshift.media.healthcheck import check_health
from codecshift.media.pipeline import Hooks, TranscodeRequest, TranscodeResult, transcode_file
from codecshift.media.probe import probe
from codecshift.media.progress import Progress
from codecshift.media.replace import recover_folder
from codecshift.media.tempfiles import QUARANTINE_DIR, find_artifacts
from support.media import fast_settings, make_clip

ROOT = Path(__file__).resolve().parent.parent


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(path: Path, hooks: Hooks | None = None, codec: str = "hevc", **options: object) -> TranscodeResult:
    settings = fast_settings(**options.pop("settings", {}))  # type: ignore[arg-type]
    request = TranscodeRequest(source=path, settings=settings, family="cpu", codec=codec, **options)  # type: ignore[arg-type]
    return transcode_file(request, hooks)


@pytest.mark.parametrize(("codec", "encoder"), [("hevc", "libx265"), ("av1", "libsvtav1")])
def test_real_encode_with_progress_stages_and_journal(copy_clip, codec: str, encoder: str) -> None:
    path = copy_clip("movie.mkv")
    size = path.stat().st_size
    updates: list[Progress] = []
    stages: list[str] = []
    journal_steps: list[str] = []
    hooks = Hooks(on_progress=updates.append, on_stage=stages.append,
                  persist_journal=lambda journal: journal_steps.append(journal["step"]))
    result = run(path, hooks, codec=codec, tag="job12-a1")
    assert (result.status, result.code, result.stage) == ("done", "done", "done"), result.reason
    assert stages == ["encoding", "verifying", "replacing"]
    assert journal_steps == ["hold_original", "place_output", "remove_original", "done"]
    assert updates and updates[-1].percent == 100.0
    assert (result.encoder, result.source_codec, result.source_size) == (encoder, "h264", size)
    assert result.output_path == str(path) and result.output_size == path.stat().st_size < size
    assert 0 < result.encode_seconds <= result.total_seconds
    assert probe(path).main_video.codec == codec
    assert find_artifacts(path.parent) == [] and result.kept_original is None


def test_cancel_removes_the_temporary_output(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    before = digest(path)
    result = run(path, Hooks(should_cancel=lambda: True))
    assert (result.status, result.code, result.stage) == ("cancelled", "cancelled", "encoding")
    assert digest(path) == before and find_artifacts(path.parent) == []


def test_not_smaller_ends_skipped_and_keeps_the_source(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    before = digest(path)
    result = run(path, settings={"min_saving_percent": 95})
    assert (result.status, result.code) == ("skipped", "not_smaller")
    assert result.reason.startswith("not smaller: the output saves") and "minimum 95%" in result.reason
    assert digest(path) == before and find_artifacts(path.parent) == []


def test_ssim_score_is_recorded_and_the_floor_enforced(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    result = run(path, settings={"quality_metric": "ssim", "quality_floor": 0.5})
    assert result.status == "done" and result.quality_metric == "ssim"
    assert result.quality_score is not None and 0.5 < result.quality_score <= 1.0
    other = copy_clip("other.mkv")
    before = digest(other)
    result = run(other, settings={"quality_metric": "ssim", "quality_floor": 0.9999, "quality_cpu_hevc_sd": 51})
    assert (result.status, result.code) == ("failed", "verify_failed")
    assert "is below the floor 0.9999" in result.reason and result.quality_score is not None
    assert digest(other) == before


def test_vmaf_is_reported_unavailable(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    result = run(path, settings={"quality_metric": "vmaf", "quality_floor": 0})
    assert result.status == "done" and result.quality_metric == "ssim"
    assert any("VMAF unavailable" in note for note in result.notes)
    other = copy_clip("other.mkv")
    result = run(other, settings={"quality_metric": "vmaf", "quality_floor": 90})
    assert result.status == "failed" and "VMAF is unavailable: this ffmpeg build has no libvmaf" in result.reason


def test_keep_original_moves_it_to_the_quarantine(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    before = digest(path)
    result = run(path, keep_original=True, tag="job3-a1")
    assert result.status == "done"
    kept = path.parent / QUARANTINE_DIR / "job3-a1" / "movie.mkv"
    assert result.kept_original == str(kept) and digest(kept) == before


def test_an_unwritable_backup_folder_fails_cleanly(copy_clip, tmp_path: Path) -> None:
    path = copy_clip("movie.mkv")
    before = digest(path)
    backup = tmp_path / "backup"
    backup.mkdir()
    subprocess.run(["chattr", "+i", str(backup)], check=True)
    try:
        result = run(path, keep_original=True, settings={"backup_folder": str(backup)})
    finally:
        subprocess.run(["chattr", "-i", str(backup)], check=True)
    assert (result.status, result.code, result.stage) == ("failed", "keep_unwritable", "replacing")
    assert "cannot keep the original" in result.reason
    assert digest(path) == before and find_artifacts(path.parent) == []


def test_container_change_renames_and_needs_a_free_path(media_dir: Path) -> None:
    avi = make_clip(media_dir / "old.avi", vcodec="mpeg4", extra_video_args=("-q:v", "2"))
    result = run(avi)
    assert result.status == "done", result.reason
    assert result.output_path == str(media_dir / "old.mkv") and not avi.exists()
    assert any(note.startswith("changed to Matroska: avi cannot carry hevc") for note in result.notes)
    taken = make_clip(media_dir / "taken.avi", vcodec="mpeg4")
    (media_dir / "taken.mkv").write_bytes(b"another file")
    before = digest(taken)
    result = run(taken)
    assert (result.status, result.code) == ("failed", "path_taken") and "taken.mkv already exists" in result.reason
    assert digest(taken) == before and (media_dir / "taken.mkv").read_bytes() == b"another file"


def test_mp4_stays_mp4_and_plays_in_apple_players(media_dir: Path) -> None:
    mp4 = make_clip(media_dir / "phone.mp4")
    result = run(mp4)
    assert result.status == "done" and result.output_path == str(mp4)
    info = probe(mp4)
    assert info.container == "mp4" and info.main_video.codec == "hevc"
    tag = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_tag_string", "-of", "csv=p=0", str(mp4)], capture_output=True, text=True)
    assert tag.stdout.strip() == "hvc1"


def test_skip_rules_apply_when_asked(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    assert run(path).status == "done"
    before = digest(path)
    again = run(path, decide=True)
    assert (again.status, again.code, again.reason) == ("skipped", "decided_skip", "already hevc, the target codec")
    strict = copy_clip("small.mkv")
    result = transcode_file(TranscodeRequest(strict, settings={**fast_settings(), "min_file_size_mb": 50},
                                             family="cpu", decide=True))
    assert result.status == "skipped" and result.reason.startswith("too small")
    assert digest(path) == before


def test_claim_snapshot_mismatch_aborts_before_encoding(copy_clip) -> None:
    path = copy_clip("movie.mkv")
    stat = path.stat()
    result = run(path, expected_size=stat.st_size + 1, expected_mtime_ns=stat.st_mtime_ns)
    assert (result.status, result.code, result.stage) == ("failed", "source_changed", "source")
    assert "changed since it was scanned" in result.reason


@pytest.mark.parametrize(("point", "forward"), [("before:place_output", False), ("after:place_output", True)])
def test_a_node_killed_while_replacing_recovers_on_restart(copy_clip, point: str, forward: bool) -> None:
    path = copy_clip("movie.mkv")
    before = digest(path)
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from support.media import fast_settings
        from codecshift.media.pipeline import TranscodeRequest, transcode_file
        transcode_file(TranscodeRequest(Path(sys.argv[1]), fast_settings(), family="cpu", codec="hevc",
                                        tag="job5-a1"))
    """)
    child = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, env={**os.environ, ENV: point},
                           capture_output=True, text=True, check=False)
    assert child.returncode == EXIT_CODE, child.stderr
    [outcome] = recover_folder(path.parent)
    assert outcome.action == ("rolled_forward" if forward else "rolled_back")
    assert find_artifacts(path.parent) == [] and [p.name for p in path.parent.iterdir()] == ["movie.mkv"]
    assert (probe(path).main_video.codec == "hevc") if forward else (digest(path) == before)


def test_health_check_passes_good_files_and_catches_damage(tmp_path: Path, h264_clip: Path) -> None:
    assert check_health(h264_clip) == check_health(h264_clip) and check_health(h264_clip).ok
    damaged = tmp_path / "damaged.mkv"
    data = bytearray(h264_clip.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = bytes(4000)
    damaged.write_bytes(bytes(data))
    result = check_health(damaged)
    assert not result.ok and result.message.startswith("decode errors:")
    notes = tmp_path / "notes.mkv"
    notes.write_text("not a video")
    assert not check_health(notes).ok and "unreadable" in check_health(notes).message


def test_results_serialise_to_json(copy_clip) -> None:
    result = run(copy_clip("movie.mkv"))
    assert json.loads(json.dumps(result.to_dict()))["status"] == "done"
