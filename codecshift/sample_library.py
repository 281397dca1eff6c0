"""A small sample library generated with ffmpeg, so a new user sees CodecShift work
before pointing it at real media."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SAMPLES = (
    ("Movies/Big Test Pattern (2024)/Big Test Pattern (2024).mkv", "testsrc2", "640x360", 6),
    ("Movies/Colour Bars (2023)/Colour Bars (2023).mp4", "smptehdbars", "640x360", 6),
    ("TV/Signal Show/Season 01/Signal Show - S01E01.mkv", "testsrc", "480x270", 5),
    ("TV/Signal Show/Season 01/Signal Show - S01E02.mkv", "rgbtestsrc", "480x270", 5),
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
    for relative, source, size, seconds in SAMPLES:
        target = folder / relative
        made.append(target)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(".partial-" + target.name)
        args = [ffmpeg, "-hide_banner", "-v", "error", "-y",
                "-f", "lavfi", "-i", f"{source}=size={size}:rate=25:duration={seconds}",
                "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                "-c:v", "libx264", "-preset", "ultrafast", "-qp", "16", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "96k", "-metadata:s:a:0", "language=eng",
                "-f", "mp4" if target.suffix == ".mp4" else "matroska", str(partial)]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise SampleError(f"ffmpeg could not generate {relative}: {result.stderr.strip()[-300:]}")
        partial.rename(target)
    return made
