"""A small sample library generated with ffmpeg, so a new user sees CodecShift work
before pointing it at real media."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# (path, lavfi source, seconds): busy pictures, so HEVC has something to save.
SAMPLES = (
    ("Movies/Big Test Pattern (2024)/Big Test Pattern (2024).mkv", "testsrc2=size=640x360:rate=25", 6),
    ("Movies/Mandelbrot (2023)/Mandelbrot (2023).mp4", "mandelbrot=size=640x360:rate=25", 6),
    ("TV/Signal Show/Season 01/Signal Show - S01E01.mkv", "cellauto=size=480x270:rate=25", 5),
    ("TV/Signal Show/Season 01/Signal Show - S01E02.mkv",
     "life=size=480x270:mold=10:rate=25:ratio=0.1:death_color=#C83232:life_color=#00ff00", 5),
)

# Tiny clips would be skipped by the real defaults (50 MB, 60 s); the sample
# library's own profile lets them through so the whole pipeline is visible.
SAMPLE_PROFILE = {"min_file_size_mb": 0, "min_duration_seconds": 0, "min_bits_per_pixel": 0.0,
                  "preset_cpu_hevc": "veryfast"}


class SampleError(RuntimeError):
    """ffmpeg is missing or failed to generate a sample."""


def generate(folder: Path) -> list[Path]:
    """Create the sample clips under ``folder`` (existing ones are kept)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SampleError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    made = []
    for relative, source, seconds in SAMPLES:
        target = folder / relative
        made.append(target)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(".partial-" + target.name)
        args = [ffmpeg, "-hide_banner", "-v", "error", "-y",
                "-f", "lavfi", "-i", source, "-t", str(seconds),
                "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-t", str(seconds),
                "-c:v", "libx264", "-preset", "ultrafast", "-qp", "16", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "96k", "-metadata:s:a:0", "language=eng",
                "-f", "mp4" if target.suffix == ".mp4" else "matroska", str(partial)]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise SampleError(f"ffmpeg could not generate {relative}: {result.stderr.strip()[-300:]}")
        partial.rename(target)
    return made
