"""The registry of behaviour settings (the ``worker_settings`` table).

Every key has a type, a default, its allowed range or choices and help text.
The dashboard's settings page, the API, ``init.sql`` and docs/settings.md all
follow from this one list, so a key cannot exist in one place and not another.
Library profiles override the keys marked ``per_library``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SettingType = Literal["int", "float", "bool", "str", "choice", "list"]

FAMILIES = ("nvenc", "qsv", "vaapi", "cpu")
CODECS = ("hevc", "av1")
TIERS = ("sd", "hd", "uhd")
TIER_LABELS = {"sd": "SD (below 720p)", "hd": "HD (720p-1080p)", "uhd": "UHD (above 1080p)"}
HARDWARE_CHOICES = ("auto", "nvenc", "qsv", "vaapi", "cpu")
X265_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow")
NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7")
QSV_PRESETS = ("veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
KNOWN_CODECS = ("hevc", "av1", "h264", "mpeg2video", "mpeg4", "vp8", "vp9", "vc1", "wmv3", "msmpeg4v3",
                "theora", "prores", "dnxhd")


class SettingError(ValueError):
    """An unknown key, or a value of the wrong type or out of range."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.reason = message


@dataclass(frozen=True)
class Setting:
    """One behaviour setting: how to parse it, what it defaults to, what it means."""

    key: str
    type: SettingType
    default: Any
    help: str
    group: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    per_library: bool = False
    secret: bool = False
    unit: str = ""
    item_choices: tuple[str, ...] = field(default=())
    # Written only by the flow that owns it (the Plex link checks the server's identity before
    # saving URL, token and identifier); the settings API and page show it and refuse changes.
    managed: bool = False

    def parse(self, value: Any) -> Any:
        """Return the typed value, accepting JSON-native values or form text."""
        parsed = _PARSERS[self.type](self, value)
        self._check(parsed)
        return parsed

    def _check(self, value: Any) -> None:
        if self.type in ("int", "float"):
            if self.minimum is not None and value < self.minimum:
                raise SettingError(self.key, f"must be at least {_num(self.minimum)}")
            if self.maximum is not None and value > self.maximum:
                raise SettingError(self.key, f"must be at most {_num(self.maximum)}")
        if self.type == "choice" and value not in self.choices:
            raise SettingError(self.key, f"must be one of {', '.join(self.choices)}")
        if self.type == "list" and self.item_choices:
            unknown = [item for item in value if item not in self.item_choices]
            if unknown:
                raise SettingError(self.key, f"unknown value {unknown[0]!r}; allowed: "
                                   f"{', '.join(self.item_choices)}")

    def describe_range(self) -> str:
        if self.type == "choice":
            return " | ".join(self.choices)
        if self.type in ("int", "float") and (self.minimum is not None or self.maximum is not None):
            return f"{_num(self.minimum)} to {_num(self.maximum)}"
        if self.type == "list" and self.item_choices:
            return "any of " + ", ".join(self.item_choices)
        return ""


def _num(value: float | None) -> str:
    if value is None:
        return "any"
    return str(int(value)) if float(value).is_integer() else str(value)


def _parse_int(setting: Setting, value: Any) -> int:
    if isinstance(value, bool):
        raise SettingError(setting.key, "must be a whole number, not true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise SettingError(setting.key, f"must be a whole number (got {value!r})")


def _parse_float(setting: Setting, value: Any) -> float:
    if isinstance(value, bool):
        raise SettingError(setting.key, "must be a number, not true/false")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise SettingError(setting.key, f"must be a number (got {value!r})")


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_bool(setting: Setting, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingError(setting.key, f"must be true or false (got {value!r})")


def _parse_str(setting: Setting, value: Any) -> str:
    if not isinstance(value, str):
        raise SettingError(setting.key, f"must be text (got {type(value).__name__})")
    return value.strip()


def _parse_list(setting: Setting, value: Any) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise SettingError(setting.key, "must be a list of text values")


_PARSERS = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "str": _parse_str,
    "choice": _parse_str,
    "list": _parse_list,
}

# Default constant-quality values per family, codec and tier. Lower is better
# quality; each family uses its own scale (x265 CRF 0-51, SVT-AV1 CRF 0-63,
# NVENC CQ 0-51, QSV global_quality 1-51, VAAPI QP 0-51).
_QUALITY_DEFAULTS = {
    ("cpu", "hevc"): (22, 24, 26),
    ("cpu", "av1"): (28, 30, 32),
    ("nvenc", "hevc"): (24, 26, 28),
    ("nvenc", "av1"): (30, 32, 34),
    ("qsv", "hevc"): (22, 24, 26),
    ("qsv", "av1"): (26, 28, 30),
    ("vaapi", "hevc"): (23, 25, 27),
    ("vaapi", "av1"): (28, 30, 32),
}
_QUALITY_MAX = {("cpu", "av1"): 63, ("nvenc", "av1"): 51}


def _quality_settings() -> list[Setting]:
    result = []
    for (family, codec), values in _QUALITY_DEFAULTS.items():
        for tier, default in zip(TIERS, values, strict=True):
            result.append(Setting(
                key=f"quality_{family}_{codec}_{tier}", type="int", default=default,
                minimum=0 if family != "qsv" else 1, maximum=_QUALITY_MAX.get((family, codec), 51),
                group="Quality", per_library=True,
                help=f"{codec.upper()} quality on {family.upper()} for {TIER_LABELS[tier]}: "
                     "lower numbers mean higher quality and larger files."))
    return result


_SETTINGS: list[Setting] = [
    Setting("target_codec", "choice", "hevc", "Codec files are converted to.", "Encoding",
            choices=CODECS, per_library=True),
    Setting("hardware_preference", "choice", "auto", "Which encoder family to use: auto picks the "
            "fastest one an online node offers (NVENC, then QSV, then VAAPI, then CPU).", "Encoding",
            choices=HARDWARE_CHOICES, per_library=True),
    Setting("hardware_fallback_to_cpu", "bool", True, "Re-route a job whose hardware encode failed "
            "once to the CPU queue.", "Encoding"),
    *_quality_settings(),
    Setting("preset_cpu_hevc", "choice", "medium", "libx265 preset: slower presets make smaller "
            "files at the same quality.", "Presets", choices=X265_PRESETS, per_library=True),
    Setting("preset_cpu_av1", "int", 8, "SVT-AV1 preset (0 slowest and smallest, 13 fastest).",
            "Presets", minimum=0, maximum=13, per_library=True),
    Setting("preset_nvenc", "choice", "p5", "NVENC preset, p1 fastest to p7 best.", "Presets",
            choices=NVENC_PRESETS, per_library=True),
    Setting("preset_qsv", "choice", "slow", "Quick Sync preset.", "Presets", choices=QSV_PRESETS,
            per_library=True),
    Setting("preset_vaapi", "int", 4, "VAAPI compression level (1 best quality, 7 fastest; drivers "
            "interpret it freely).", "Presets", minimum=1, maximum=7, per_library=True),
    Setting("done_codecs", "list", ["hevc", "av1"], "Video codecs counted as already done: files "
            "in them are skipped.", "Skip rules", per_library=True, item_choices=KNOWN_CODECS),
    Setting("min_file_size_mb", "int", 50, "Files smaller than this are skipped.", "Skip rules",
            minimum=0, maximum=1_000_000, per_library=True, unit="MB"),
    Setting("min_duration_seconds", "int", 60, "Files shorter than this are skipped.", "Skip rules",
            minimum=0, maximum=86_400, per_library=True, unit="s"),
    Setting("min_bits_per_pixel", "float", 0.04, "Files whose video bitrate per pixel per frame is "
            "already below this are skipped as already efficient.", "Skip rules", minimum=0,
            maximum=10, per_library=True),
    Setting("min_saving_percent", "int", 10, "The output must be at least this much smaller than "
            "the source, otherwise the job ends skipped and the source stays.", "Verification",
            minimum=0, maximum=95, per_library=True, unit="%"),
    Setting("duration_tolerance_seconds", "float", 1.0, "Largest difference in duration between "
            "source and output that still passes.", "Verification", minimum=0, maximum=600, unit="s"),
    Setting("quality_metric", "choice", "none", "Compare output with source before replacing: "
            "none, ssim, or vmaf (where ffmpeg has libvmaf).", "Verification",
            choices=("none", "ssim", "vmaf"), per_library=True),
    Setting("quality_floor", "float", 0.0, "Lowest quality score accepted (SSIM 0-1, VMAF 0-100); "
            "0 records the score without a floor.", "Verification", minimum=0, maximum=100,
            per_library=True),
    Setting("keep_original", "bool", False, "Keep the original after replacing: moved to the backup "
            "folder, or to the quarantine when no folder is set.", "Originals", per_library=True),
    Setting("backup_folder", "str", "", "Folder kept originals are moved to; empty uses a "
            ".codecshift-quarantine folder beside each file.", "Originals", per_library=True),
    Setting("quarantine_days", "int", 7, "Days a quarantined original is kept before cleanup "
            "removes it; 0 keeps it forever.", "Originals", minimum=0, maximum=3650, unit="days"),
    Setting("rescan_interval_minutes", "int", 360, "How often libraries are rescanned; 0 turns "
            "periodic rescans off.", "Schedules", minimum=0, maximum=525_600, per_library=True,
            unit="min"),
    Setting("queue_paused", "bool", False, "Publish no new jobs to any node.", "Queue"),
    Setting("max_attempts", "int", 3, "Tries before a job that keeps failing or whose node keeps "
            "dying ends failed.", "Queue", minimum=1, maximum=20),
    Setting("dispatch_interval_seconds", "int", 10, "How often beat tops up the queues and repairs "
            "messages a restarted broker lost (jobs finishing top them up at once too).", "Queue",
            minimum=1, maximum=3600, unit="s"),
    Setting("dispatch_depth_factor", "int", 2, "Messages kept on each queue per online encode slot "
            "serving it.", "Queue", minimum=1, maximum=20),
    Setting("concurrency_cpu", "int", 1, "Encodes at once on each node's CPU.", "Nodes", minimum=1,
            maximum=64),
    Setting("concurrency_nvenc", "int", 3, "Encodes at once on each NVIDIA GPU (consumer cards allow "
            "a limited number of NVENC sessions).", "Nodes", minimum=1, maximum=32),
    Setting("concurrency_qsv", "int", 2, "Encodes at once on each Quick Sync device.", "Nodes",
            minimum=1, maximum=32),
    Setting("concurrency_vaapi", "int", 2, "Encodes at once on each VAAPI device.", "Nodes",
            minimum=1, maximum=32),
    Setting("heartbeat_seconds", "int", 10, "How often a node reports to the dashboard.", "Nodes",
            minimum=1, maximum=600, unit="s"),
    Setting("node_offline_after_seconds", "int", 60, "A node silent this long shows offline and its "
            "running jobs return to the queue.", "Nodes", minimum=3, maximum=86_400, unit="s"),
    Setting("cleanup_age_hours", "int", 24, "Temporary files with no live job and older than this "
            "are removed.", "Maintenance", minimum=0, maximum=8760, unit="h"),
    Setting("history_retention_days", "int", 0, "History older than this is pruned; 0 keeps it "
            "forever.", "Maintenance", minimum=0, maximum=36_500, unit="days"),
    Setting("scan_batch_size", "int", 500, "Files probed and written per batch during a scan.",
            "Maintenance", minimum=1, maximum=50_000),
    Setting("plex_url", "str", "", "Base URL of the linked Plex server; set by linking a server on the "
            "Plex page (or POST /api/plex/link).", "Plex", managed=True),
    Setting("plex_token", "str", "", "Plex token; write-only, never shown again; set by linking a server "
            "on the Plex page.", "Plex", secret=True, managed=True),
    Setting("plex_machine_identifier", "str", "", "Machine identifier of the linked Plex server, "
            "recorded when it is linked: every call checks that the server at the URL is still this one, "
            "and webhooks from other servers are ignored.", "Plex", managed=True),
    Setting("plex_verify_tls", "bool", True, "Check the Plex server's HTTPS certificate; turn off only "
            "for a self-signed certificate on a trusted network.", "Plex"),
    Setting("plex_timeout", "int", 10, "Seconds to wait for each answer from Plex.", "Plex", minimum=1,
            maximum=120, unit="s"),
    Setting("plex_refresh_after_replace", "bool", True, "Ask Plex to rescan the folder of each "
            "replaced file.", "Plex"),
    Setting("notify_urls", "list", [], "Apprise URLs notified of failures, finished libraries and "
            "offline nodes; write-only, they often carry tokens.", "Notifications", secret=True),
    Setting("notify_on_failure", "bool", True, "Notify when a job fails.", "Notifications"),
    Setting("notify_on_library_done", "bool", True, "Notify when a library has no work left.",
            "Notifications"),
    Setting("notify_on_node_offline", "bool", True, "Notify when a node goes offline.", "Notifications"),
]

REGISTRY: dict[str, Setting] = {setting.key: setting for setting in _SETTINGS}
PER_LIBRARY_KEYS: tuple[str, ...] = tuple(s.key for s in _SETTINGS if s.per_library)


def get_setting(key: str) -> Setting:
    """The definition of ``key``; an unknown key is a SettingError."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise SettingError(key, "unknown setting") from None


def parse_value(key: str, value: Any) -> Any:
    return get_setting(key).parse(value)


def defaults() -> dict[str, Any]:
    return {key: _copy(setting.default) for key, setting in REGISTRY.items()}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def encode(value: Any) -> str:
    """The stored form of a value: JSON text, so every database holds the same bytes."""
    return json.dumps(value, separators=(",", ":"))


def decode(key: str, stored: str) -> Any:
    """Parse a stored value; a broken row falls back to the default rather than crash."""
    try:
        return parse_value(key, json.loads(stored))
    except (ValueError, TypeError):
        return _copy(get_setting(key).default)


def validate_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """Check a library profile: only per-library keys, each with a valid value."""
    result = {}
    for key, value in profile.items():
        setting = get_setting(key)
        if not setting.per_library:
            raise SettingError(key, "cannot be set per library")
        result[key] = setting.parse(value)
    return result


def groups() -> dict[str, list[Setting]]:
    """Settings in display order, grouped as the settings page shows them."""
    result: dict[str, list[Setting]] = {}
    for setting in _SETTINGS:
        result.setdefault(setting.group, []).append(setting)
    return result


def public_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values safe to show: secrets become a flag saying whether one is set."""
    out = {}
    for key, value in values.items():
        setting = REGISTRY.get(key)
        if setting is not None and setting.secret:
            out[key] = {"set": bool(value)}
        else:
            out[key] = value
    return out


def check_writable(keys: Iterable[str]) -> None:
    """SettingError for the first unknown key or key managed by its own flow (the Plex link):
    the settings API and page may not write those."""
    for key in keys:
        if get_setting(key).managed:
            raise SettingError(key, "is set by linking a Plex server (the Plex page or POST /api/plex/link), "
                               "which checks the server first; it cannot be changed here")


def iter_settings() -> Iterable[Setting]:
    return iter(_SETTINGS)
