"""`codecshift transcode` as a user runs it: folders walked, dry runs, summaries, exit codes, Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from codecshift.media.faults import ENV, EXIT_CODE
from codecshift.media.probe import probe
from codecshift.media.tempfiles import QUARANTINE_DIR, find_artifacts
from support.media import make_clip

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--set", "min_file_size_mb=0", "--set", "min_duration_seconds=0", "--set", "min_bits_per_pixel=0",
        "--set", "preset_cpu_hevc=ultrafast", "--set", "preset_cpu_av1=12"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CODECSHIFT_")}
    base.update({"COLUMNS": "250", "CODECSHIFT_ENCODERS": "libx265,libsvtav1"}, **(env or {}))
    return subprocess.run([sys.executable, "-m", "codecshift.cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT, env=base, check=False)


def library(root: Path, h264_clip: Path) -> dict[str, Path]:
    films = root / "Films"
    (films / "Old").mkdir(parents=True)
    files = {"h264": films / "Old" / "movie one.mkv", "other": films / "-dash 'quoted' été.mkv"}
    for path in files.values():
        shutil.copy2(h264_clip, path)
    files["hevc"] = make_clip(films / "already.mkv", vcodec="libx265",
                              extra_video_args=("-x265-params", "log-level=error"))
    (films / "notes.txt").write_text("not media")
    (films / "movie one.nfo").write_text("<movie/>")
    return files


def test_transcodes_a_folder_and_prints_a_summary(tmp_path: Path, h264_clip: Path) -> None:
    files = library(tmp_path, h264_clip)
    hevc_before = digest(files["hevc"])
    result = cli("transcode", str(tmp_path / "Films"), *FAST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CodecShift transcode" in result.stdout
    for column in ("File", "Before", "After", "Saved", "Time", "Verdict"):
        assert column in result.stdout
    assert "skipped: already hevc, the target codec" in result.stdout
    assert "2 done, 1 skipped; saved" in result.stdout
    assert probe(files["h264"]).main_video.codec == "hevc" and probe(files["other"]).main_video.codec == "hevc"
    assert digest(files["hevc"]) == hevc_before
    assert (tmp_path / "Films" / "notes.txt").read_text() == "not media"
    assert find_artifacts(files["h264"].parent) == [] and find_artifacts(files["other"].parent) == []


def test_dry_run_changes_nothing(tmp_path: Path, h264_clip: Path) -> None:
    files = library(tmp_path, h264_clip)
    before = {name: digest(path) for name, path in files.items()}
    result = cli("transcode", "--dry-run", "--json", str(tmp_path / "Films"), *FAST)
    assert result.returncode == 0, result.stderr
    rows = {Path(row["path"]).name: row for row in json.loads(result.stdout)}
    assert set(rows) == {"movie one.mkv", "-dash 'quoted' été.mkv", "already.mkv"}
    assert rows["movie one.mkv"]["action"] == "transcode" and rows["movie one.mkv"]["encoder"] == "libx265"
    assert rows["already.mkv"]["action"] == "skip"
    assert {name: digest(path) for name, path in files.items()} == before
    table = cli("transcode", "--dry-run", str(files["h264"]), *FAST)
    assert "transcode" in table.stdout and "h264 160x90 (sd) to hevc with libx265" in table.stdout


def test_a_failed_file_makes_the_exit_code_non_zero(tmp_path: Path, h264_clip: Path) -> None:
    good = tmp_path / "good.mkv"
    shutil.copy2(h264_clip, good)
    bad = tmp_path / "bad.mkv"
    bad.write_text("definitely not a film")
    result = cli("transcode", "--json", str(tmp_path), *FAST)
    assert result.returncode == 1
    statuses = {Path(r["source_path"]).name: (r["status"], r["code"]) for r in json.loads(result.stdout)}
    assert statuses == {"bad.mkv": ("failed", "probe_error"), "good.mkv": ("done", "done")}
    assert bad.read_text() == "definitely not a film"
    dry = cli("transcode", "--dry-run", str(bad), *FAST)
    assert dry.returncode == 1 and "[matroska,webm] EBML header parsing failed" in dry.stdout


def test_encoder_by_name_and_keep_original(tmp_path: Path, h264_clip: Path) -> None:
    path = tmp_path / "film.mkv"
    shutil.copy2(h264_clip, path)
    before = digest(path)
    result = cli("transcode", "--encoder", "libsvtav1", "--keep-original", "--json", str(path), *FAST)
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["encoder"] == "libsvtav1" and probe(path).main_video.codec == "av1"
    assert digest(Path(row["kept_original"])) == before and QUARANTINE_DIR in row["kept_original"]
    clash = cli("transcode", "--encoder", "libsvtav1", "--codec", "hevc", str(path))
    assert clash.returncode == 2 and "libsvtav1 encodes av1, not hevc" in clash.stderr
    bad_setting = cli("transcode", "--set", "min_file_size_mb=lots", str(path))
    assert bad_setting.returncode == 2 and "min_file_size_mb" in bad_setting.stderr


def test_ctrl_c_cancels_cleanly(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "long.mkv", duration=20, size="640x360")
    before = digest(path)
    base = {k: v for k, v in os.environ.items() if not k.startswith("CODECSHIFT_")}
    process = subprocess.Popen([sys.executable, "-m", "codecshift.cli.main", "transcode", "--json", str(path),
                                *FAST[:6], "--preset", "slow"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**base, "CODECSHIFT_ENCODERS": "libx265"})
    deadline = time.monotonic() + 30
    while not find_artifacts(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    [row] = json.loads(out)
    assert row["status"] == "cancelled"
    assert digest(path) == before and find_artifacts(tmp_path) == []


def test_an_interrupted_run_is_recovered_by_the_next(tmp_path: Path, h264_clip: Path) -> None:
    path = tmp_path / "film.mkv"
    shutil.copy2(h264_clip, path)
    crashed = cli("transcode", str(path), *FAST, env={ENV: "after:hold_original"})
    assert crashed.returncode == EXIT_CODE and not path.exists()  # the original waits under its held name
    result = cli("transcode", "--json", str(tmp_path), *FAST)
    assert result.returncode == 0, result.stderr
    assert "Recovered an interrupted job" in result.stderr
    assert [Path(r["source_path"]).name for r in json.loads(result.stdout)] == ["film.mkv"]
    assert probe(path).main_video.codec == "hevc" and find_artifacts(tmp_path) == []
