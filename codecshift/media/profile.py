"""Typed reads of the effective settings, and the encoder names per family and codec.

Every setting the engine uses goes through ``setting()``: a missing key or a
value of the wrong type raises ``SettingError`` naming the key, so a profile
that lacks, say, ``quality_qsv_av1_uhd`` fails loudly instead of encoding with
a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codecshift.registry import CODECS, SettingError, parse_value

# Fastest first: the order "auto" tries families in.
FAMILY_ORDER = ("nvenc", "qsv", "vaapi", "cpu")
ENCODERS: dict[tuple[str, str], str] = {
    ("cpu", "hevc"): "libx265",
    ("cpu", "av1"): "libsvtav1",
    ("nvenc", "hevc"): "hevc_nvenc",
    ("nvenc", "av1"): "av1_nvenc",
    ("qsv", "hevc"): "hevc_qsv",
    ("qsv", "av1"): "av1_qsv",
    ("vaapi", "hevc"): "hevc_vaapi",
    ("vaapi", "av1"): "av1_vaapi",
}
ENCODER_FAMILY: dict[str, tuple[str, str]] = {name: key for key, name in ENCODERS.items()}
MIB = 1024 * 1024


def setting(settings: Mapping[str, Any], key: str) -> Any:
    """The typed value of ``key``; SettingError when it is missing or invalid."""
    if key not in settings:
        raise SettingError(key, "missing from the effective settings")
    return parse_value(key, settings[key])


def encoder_for(family: str, codec: str) -> str:
    try:
        return ENCODERS[(family, codec)]
    except KeyError:
        raise ValueError(f"no encoder for family {family!r} and codec {codec!r}; families: "
                         f"{', '.join(FAMILY_ORDER)}; codecs: {', '.join(CODECS)}") from None


def resolution_tier(width: int | None, height: int | None) -> str:
    """sd below 720p, hd from 720p to 1080p, uhd above.

    Judged on either dimension with some slack, so a 1920x800 scope film is
    HD and a 2048x1080 DCI master is HD rather than UHD.
    """
    width, height = width or 0, height or 0
    if width > 2048 or height > 1152:
        return "uhd"
    if width >= 1200 or height >= 700:
        return "hd"
    return "sd"


def encode_settings(settings: Mapping[str, Any], family: str, codec: str, tier: str) -> tuple[int, str]:
    """(quality, preset) for one family, codec and resolution tier; raises on any missing key."""
    encoder_for(family, codec)
    quality = setting(settings, f"quality_{family}_{codec}_{tier}")
    preset_key = f"preset_{family}_{codec}" if family == "cpu" else f"preset_{family}"
    preset = setting(settings, preset_key)
    return int(quality), str(preset)
