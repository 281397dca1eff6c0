"""The behaviour settings registry: every key typed, defaulted, bounded and explained."""

from __future__ import annotations

import pytest

from codecshift import registry
from codecshift.registry import FAMILIES, TIERS, SettingError


def test_every_default_is_valid_for_its_own_rules() -> None:
    for setting in registry.iter_settings():
        assert setting.parse(setting.default) == setting.default, setting.key
        assert setting.help.strip(), setting.key


@pytest.mark.parametrize("key", [
    "target_codec", "hardware_preference", "done_codecs", "min_file_size_mb", "min_duration_seconds",
    "min_saving_percent", "keep_original", "backup_folder", "quarantine_days",
    "duration_tolerance_seconds", "quality_floor", "rescan_interval_minutes", "queue_paused",
    "cleanup_age_hours", "history_retention_days", "preset_cpu_hevc", "preset_cpu_av1", "preset_nvenc",
    "preset_qsv", "preset_vaapi",
])
def test_required_keys_exist(key: str) -> None:
    assert key in registry.REGISTRY


def test_quality_for_every_family_codec_and_tier() -> None:
    for family in FAMILIES:
        for codec in registry.CODECS:
            for tier in TIERS:
                assert f"quality_{family}_{codec}_{tier}" in registry.REGISTRY


def test_choices() -> None:
    assert registry.REGISTRY["target_codec"].choices == ("hevc", "av1")
    assert registry.REGISTRY["hardware_preference"].choices == ("auto", "nvenc", "qsv", "vaapi", "cpu")


def test_unknown_key_is_a_clear_error() -> None:
    with pytest.raises(SettingError, match="no_such_key: unknown setting"):
        registry.parse_value("no_such_key", 1)


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("min_saving_percent", "ten", "whole number"),
    ("min_saving_percent", True, "not true/false"),
    ("min_saving_percent", 99, "at most 95"),
    ("min_saving_percent", -1, "at least 0"),
    ("quality_floor", "high", "must be a number"),
    ("keep_original", "perhaps", "true or false"),
    ("keep_original", 3, "true or false"),
    ("target_codec", "h264", "one of hevc, av1"),
    ("backup_folder", 12, "must be text"),
    ("done_codecs", "hevc, divx", "unknown value 'divx'"),
    ("done_codecs", [1, 2], "list of text"),
])
def test_wrong_type_or_range_is_a_clear_error(key: str, value: object, reason: str) -> None:
    with pytest.raises(SettingError) as info:
        registry.parse_value(key, value)
    assert info.value.key == key
    assert reason in str(info.value)


def test_form_text_is_parsed() -> None:
    assert registry.parse_value("min_saving_percent", " 15 ") == 15
    assert registry.parse_value("keep_original", "on") is True
    assert registry.parse_value("duration_tolerance_seconds", "0.5") == 0.5
    assert registry.parse_value("done_codecs", "hevc,\nav1") == ["hevc", "av1"]


def test_stored_form_round_trips() -> None:
    for setting in registry.iter_settings():
        assert registry.decode(setting.key, registry.encode(setting.default)) == setting.default


def test_profile_accepts_only_per_library_keys() -> None:
    assert registry.validate_profile({"target_codec": "av1", "min_saving_percent": "20"}) == {
        "target_codec": "av1", "min_saving_percent": 20}
    with pytest.raises(SettingError, match="cannot be set per library"):
        registry.validate_profile({"queue_paused": True})


def test_secrets_are_never_shown() -> None:
    shown = registry.public_values({"plex_token": "abc", "notify_urls": [], "target_codec": "hevc"})
    assert shown == {"plex_token": {"set": True}, "notify_urls": {"set": False}, "target_codec": "hevc"}


def test_generated_docs_are_current() -> None:
    from codecshift import docsgen

    assert (docsgen.DOCS / "settings.md").read_text(encoding="utf-8") == docsgen.render_settings(), \
        "docs/settings.md is stale: run `python -m codecshift.docsgen`"
    assert (docsgen.DOCS / "configuration.md").read_text(encoding="utf-8") == docsgen.render_configuration(), \
        "docs/configuration.md is stale: run `python -m codecshift.docsgen`"
