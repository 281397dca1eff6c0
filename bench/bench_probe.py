"""Probe throughput: in-process PyAV probing against a loop of ffprobe processes, same files, one run.

    .venv/bin/python bench/bench_probe.py [--files 200]

Prints files per second for both and the ratio (goal: at least 10x). Not part of the test run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from codecshift.media.probe import probe  # noqa: E402
from support.media import find_font, make_clip  # noqa: E402


def make_library(folder: Path, count: int) -> list[Path]:
    """A few different clips (plain, many tracks, MP4, 10-bit HEVC), copied to ``count`` files."""
    kinds = [
        make_clip(folder / "seed-plain.mkv"),
        make_clip(folder / "seed-rich.mkv", audio_languages=("eng", "fre"), subtitle_languages=("eng", "ger"),
                  chapters=True, font=find_font()),
        make_clip(folder / "seed-phone.mp4"),
        make_clip(folder / "seed-hdr.mkv", vcodec="libx265", pix_fmt="yuv420p10le", hdr=True,
                  extra_video_args=("-x265-params", "log-level=error")),
    ]
    files = []
    for index in range(count):
        seed = kinds[index % len(kinds)]
        target = folder / "library" / f"film {index:05d}{seed.suffix}"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(seed, target)
        files.append(target)
    return files


def time_pyav(files: list[Path]) -> float:
    started = time.perf_counter()
    for path in files:
        probe(path)
    return time.perf_counter() - started


def time_ffprobe(files: list[Path]) -> float:
    started = time.perf_counter()
    for path in files:
        subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-show_chapters", "-of", "json",
                        str(path)], capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codecshift-bench-") as tmp:
        files = make_library(Path(tmp), args.files)
        time_pyav(files[:8])  # import and page-cache warm-up for both sides
        time_ffprobe(files[:8])
        ours, theirs = [], []
        for _ in range(args.rounds):  # interleaved, so a busy neighbour hurts both alike
            ours.append(time_pyav(files))
            theirs.append(time_ffprobe(files))
    pyav, ffprobe = statistics.median(ours), statistics.median(theirs)
    count = len(files)
    print(f"files: {count}, rounds: {args.rounds} (median shown)")
    print(f"in-process probe (PyAV): {pyav:8.3f} s  {count / pyav:9.1f} files/s  {pyav / count * 1000:7.2f} ms/file")
    print(f"ffprobe process loop:    {ffprobe:8.3f} s  {count / ffprobe:9.1f} files/s  "
          f"{ffprobe / count * 1000:7.2f} ms/file")
    ratio = ffprobe / pyav
    print(f"speed-up: {ratio:.1f}x (goal >= 10x: {'met' if ratio >= 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
