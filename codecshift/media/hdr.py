"""HDR10 static metadata: read it from the source, hand it to the CPU encoders.

The mastering display (primaries, white point, luminance range) and content
light levels (MaxCLL, MaxFALL) travel as side data of the decoded frames.
ffmpeg 5.1's libx265 and libsvtav1 wrappers do not pass them on, so they are
read once per HDR encode (one ffprobe of the first frame: ~50 ms against an
encode of minutes) and given to the encoder as its own parameters.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

FFPROBE = "ffprobe"


@dataclass(frozen=True)
class HdrMetadata:
    """Chromaticities as CIE 1931 x/y, luminance in cd/m²; None where the source has none."""

    green: tuple[float, float] | None = None
    blue: tuple[float, float] | None = None
    red: tuple[float, float] | None = None
    white_point: tuple[float, float] | None = None
    max_luminance: float | None = None
    min_luminance: float | None = None
    max_cll: int | None = None
    max_fall: int | None = None

    @property
    def has_display(self) -> bool:
        return None not in (self.green, self.blue, self.red, self.white_point, self.max_luminance,
                            self.min_luminance)

    @property
    def has_light_level(self) -> bool:
        return self.max_cll is not None and self.max_fall is not None


def _ratio(value: object) -> float | None:
    try:
        return float(Fraction(str(value)))
    except (ValueError, ZeroDivisionError):
        return None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def parse_side_data(side_data: list[dict[str, Any]]) -> HdrMetadata | None:
    """From ffprobe's ``side_data_list`` of one frame."""
    values: dict[str, Any] = {}
    for item in side_data:
        kind = item.get("side_data_type")
        if kind == "Mastering display metadata":
            pairs = {name: (_ratio(item.get(f"{name}_x")), _ratio(item.get(f"{name}_y")))
                     for name in ("red", "green", "blue", "white_point")}
            for name, (x, y) in pairs.items():
                if x is not None and y is not None:
                    values[name] = (x, y)
            values["max_luminance"] = _ratio(item.get("max_luminance"))
            values["min_luminance"] = _ratio(item.get("min_luminance"))
        elif kind == "Content light level metadata":
            values["max_cll"] = _int(item.get("max_content"))
            values["max_fall"] = _int(item.get("max_average"))
    meta = HdrMetadata(**values)
    return meta if meta.has_display or meta.has_light_level else None


def read_hdr_metadata(path: str | os.PathLike[str], video_position: int = 0) -> HdrMetadata | None:
    """The static metadata of the first frame of the ``video_position``-th video stream, if any."""
    args = [FFPROBE, "-v", "error", "-select_streams", f"v:{video_position}", "-read_intervals", "%+#1",
            "-show_frames", "-show_entries", "frame=side_data_list", "-of", "json",
            "file:" + os.path.abspath(os.fspath(path))]
    try:
        output = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False,
                                stdin=subprocess.DEVNULL).stdout
        frames = json.loads(output or "{}").get("frames") or []
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None
    return parse_side_data(frames[0].get("side_data_list") or []) if frames else None


def x265_params(meta: HdrMetadata) -> str:
    """x265's units: chromaticity in 1/50000, luminance in 1/10000 cd/m²."""
    parts = ["hdr10=1"]
    if meta.has_display:
        def xy(pair: tuple[float, float] | None) -> str:
            assert pair is not None
            return f"({round(pair[0] * 50000)},{round(pair[1] * 50000)})"
        parts.append(f"master-display=G{xy(meta.green)}B{xy(meta.blue)}R{xy(meta.red)}WP{xy(meta.white_point)}"
                     f"L({round((meta.max_luminance or 0) * 10000)},{round((meta.min_luminance or 0) * 10000)})")
    if meta.has_light_level:
        parts.append(f"max-cll={meta.max_cll},{meta.max_fall}")
    return ":".join(parts)


def svtav1_params(meta: HdrMetadata) -> str:
    """SVT-AV1's form: plain numbers, chromaticity as x/y, luminance in cd/m²."""
    parts = []
    if meta.has_display:
        def xy(pair: tuple[float, float] | None) -> str:
            assert pair is not None
            return f"({pair[0]:.4f},{pair[1]:.4f})"
        parts.append(f"mastering-display=G{xy(meta.green)}B{xy(meta.blue)}R{xy(meta.red)}WP{xy(meta.white_point)}"
                     f"L({meta.max_luminance:.4f},{meta.min_luminance:.4f})")
    if meta.has_light_level:
        parts.append(f"content-light={meta.max_cll},{meta.max_fall}")
    return ":".join(parts)
