"""decide(): every skip reason, the family choice and the typed quality lookup, on plain data."""

from __future__ import annotations

from typing import Any

import pytest

from codecshift.media.decide import Decision, bits_per_pixel, choose_family, decide
from codecshift.media.probe import MediaInfo, StreamInfo
from codecshift.media.profile import MIB, encode_settings, resolution_tier
from codecshift.registry import SettingError, defaults

GB = 1024 * MIB


def movie(codec: str = "h264", width: int = 1920, height: int = 1080, fps: float = 24.0,
          bitrate: int | None = 8_000_000, duration: float | None = 5400.0, cover_only: bool = False,
          audio_bitrate: int | None = 640_000, pix_fmt: str | None = "yuv420p") -> MediaInfo:
    streams = [StreamInfo(index=0, type="video", codec=codec, width=width, height=height, frame_rate=fps,
                          bit_depth=8, pix_fmt=pix_fmt, cover_art=cover_only),
               StreamInfo(index=1, type="audio", codec="ac3", channels=6, language="eng", bit_rate=audio_bitrate)]
    return MediaInfo(path="/m/film.mkv", size=4 * GB, container="matroska", format_name="matroska,webm",
                     duration=duration, bitrate=bitrate, streams=tuple(streams))


def settings(**overrides: Any) -> dict[str, Any]:
    values = defaults()
    values.update(overrides)
    return values


def test_transcode_with_encoder_quality_and_preset() -> None:
    decision = decide(movie(), settings(), size=4 * GB, families=["cpu"])
    assert decision == Decision("transcode", decision.reason, "hevc", "cpu", "libx265", 24, "medium", "hd")
    assert "h264 1920x1080 (hd) to hevc" in decision.reason and "libx265 quality 24" in decision.reason


def test_auto_prefers_nvenc_then_qsv_then_vaapi_then_cpu() -> None:
    assert choose_family("auto", ["cpu", "vaapi", "qsv", "nvenc"], True)[0] == "nvenc"
    assert choose_family("auto", ["cpu", "vaapi", "qsv"], True)[0] == "qsv"
    assert choose_family("auto", ["cpu", "vaapi"], True)[0] == "vaapi"
    assert choose_family("auto", ["cpu"], True)[0] == "cpu"
    decision = decide(movie(), settings(target_codec="av1"), size=4 * GB, families=["cpu", "qsv"])
    assert (decision.family, decision.encoder, decision.quality, decision.preset) == ("qsv", "av1_qsv", 28, "slow")


def test_unknown_families_leave_auto_open_and_keep_an_explicit_choice() -> None:
    decision = decide(movie(), settings(), size=4 * GB)
    assert decision.action == "transcode" and decision.family is None and decision.encoder is None
    assert decision.quality is None and "chosen at dispatch" in decision.reason
    decision = decide(movie(), settings(hardware_preference="vaapi"), size=4 * GB)
    assert (decision.family, decision.encoder, decision.quality, decision.preset) == ("vaapi", "hevc_vaapi", 25, "4")


def test_explicit_family_missing_falls_back_to_cpu_or_waits() -> None:
    decision = decide(movie(), settings(hardware_preference="nvenc"), size=4 * GB, families=["cpu"])
    assert decision.family == "cpu" and "nvenc unavailable, falling back to cpu" in decision.reason
    decision = decide(movie(), settings(hardware_preference="nvenc", hardware_fallback_to_cpu=False),
                      size=4 * GB, families=["cpu"])
    assert decision.action == "transcode" and decision.family is None and "waiting for a node with nvenc" \
        in decision.reason


@pytest.mark.parametrize(("info", "overrides", "size", "reason"), [
    (None, {}, GB, "not readable as media"),
    (movie(cover_only=True), {}, GB, "no video stream (only cover art)"),
    (movie(codec="hevc"), {}, GB, "already hevc, the target codec"),
    (movie(pix_fmt=None), {}, GB, "the h264 video cannot be decoded"),
    (movie(codec="av1"), {}, GB, "av1 is in the done list"),
    (movie(codec="vp9"), {"done_codecs": ["vp9"]}, GB, "vp9 is in the done list"),
    (movie(), {"min_file_size_mb": 50}, 12 * MIB, "too small: 12.0 MB, the minimum is 50 MB"),
    (movie(duration=30), {}, GB, "too short: 30 s, the minimum is 60 s"),
    (movie(duration=None), {}, GB, "duration unknown"),
    (movie(bitrate=1_500_000), {}, GB, "bitrate already low: 0.017 bits per pixel, below 0.04"),
])
def test_skip_reasons(info: MediaInfo | None, overrides: dict[str, Any], size: int, reason: str) -> None:
    decision = decide(info, settings(**overrides), size=size, families=["cpu"])
    assert decision.action == "skip"
    assert decision.reason.startswith(reason)
    assert decision.family is None and decision.encoder is None


def test_target_codec_is_not_skipped_through_the_done_list_when_it_is_the_source() -> None:
    decision = decide(movie(codec="hevc"), settings(target_codec="av1", done_codecs=["av1"]), size=GB,
                      families=["cpu"])
    assert decision.action == "transcode" and decision.encoder == "libsvtav1"


def test_symlink_awaits_approval_with_the_encode_planned() -> None:
    decision = decide(movie(), settings(), size=GB, is_symlink=True, families=["cpu"])
    assert decision.action == "approve" and decision.reason.startswith("a symlink, awaiting approval")
    assert decision.encoder == "libx265"
    assert decide(movie(codec="hevc"), settings(), size=GB, is_symlink=True).action == "skip"


def test_bits_per_pixel_uses_the_video_share_of_the_bitrate() -> None:
    assert bits_per_pixel(movie()) == pytest.approx((8_000_000 - 640_000) / (1920 * 1080 * 24))
    assert bits_per_pixel(movie(audio_bitrate=None)) == pytest.approx(8_000_000 / (1920 * 1080 * 24))
    assert bits_per_pixel(movie(bitrate=None)) is None
    assert decide(movie(bitrate=None), settings(), size=GB, families=["cpu"]).action == "transcode"


def test_zero_skip_rules_let_tiny_clips_through() -> None:
    tiny = movie(width=160, height=90, duration=1.0, bitrate=50_000)
    strict = decide(tiny, settings(), size=200_000, families=["cpu"])
    assert strict.action == "skip"
    relaxed = decide(tiny, settings(min_file_size_mb=0, min_duration_seconds=0, min_bits_per_pixel=0),
                     size=200_000, families=["cpu"])
    assert relaxed.action == "transcode" and relaxed.tier == "sd" and relaxed.quality == 22


@pytest.mark.parametrize(("width", "height", "tier"), [
    (720, 576, "sd"), (1024, 576, "sd"), (1280, 720, "hd"), (1280, 536, "hd"), (1920, 1080, "hd"),
    (1920, 800, "hd"), (2048, 1080, "hd"), (2560, 1440, "uhd"), (3840, 2160, "uhd"), (None, None, "sd"),
])
def test_resolution_tiers(width: int | None, height: int | None, tier: str) -> None:
    assert resolution_tier(width, height) == tier


def test_encode_settings_is_typed_and_raises_on_a_missing_key() -> None:
    assert encode_settings(defaults(), "cpu", "av1", "uhd") == (32, "8")
    assert encode_settings(defaults(), "nvenc", "hevc", "sd") == (24, "p5")
    assert encode_settings({**defaults(), "quality_qsv_hevc_hd": "30"}, "qsv", "hevc", "hd") == (30, "slow")
    incomplete = defaults()
    del incomplete["quality_qsv_av1_uhd"]
    with pytest.raises(SettingError, match="quality_qsv_av1_uhd: missing"):
        encode_settings(incomplete, "qsv", "av1", "uhd")
    with pytest.raises(SettingError, match="quality_cpu_hevc_hd"):
        encode_settings({**defaults(), "quality_cpu_hevc_hd": "high"}, "cpu", "hevc", "hd")
    with pytest.raises(ValueError, match="no encoder for family"):
        encode_settings(defaults(), "amf", "hevc", "hd")


def test_decide_raises_on_missing_settings_rather_than_guessing() -> None:
    incomplete = defaults()
    del incomplete["min_bits_per_pixel"]
    with pytest.raises(SettingError, match="min_bits_per_pixel"):
        decide(movie(), incomplete, size=GB, families=["cpu"])
