"""HDR10 static metadata survives the CPU encoders (ffmpeg 5.1's wrappers would drop it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codecshift.media.commands import build_command
from codecshift.media.hdr import HdrMetadata, parse_side_data, read_hdr_metadata, svtav1_params, x265_params
from codecshift.media.pipeline import TranscodeRequest, transcode_file
from codecshift.media.probe import probe
from codecshift.registry import defaults
from support.media import fast_settings, make_clip, make_hdr10_clip

P3_1000 = HdrMetadata(green=(0.265, 0.69), blue=(0.15, 0.06), red=(0.68, 0.32), white_point=(0.3127, 0.329),
                      max_luminance=1000.0, min_luminance=0.0001, max_cll=1000, max_fall=400)


def test_parses_ffprobes_side_data() -> None:
    side_data = [
        {"side_data_type": "Mastering display metadata", "red_x": "34000/50000", "red_y": "16000/50000",
         "green_x": "13250/50000", "green_y": "34500/50000", "blue_x": "7500/50000", "blue_y": "3000/50000",
         "white_point_x": "15635/50000", "white_point_y": "16450/50000", "min_luminance": "1/10000",
         "max_luminance": "10000000/10000"},
        {"side_data_type": "Content light level metadata", "max_content": 1000, "max_average": 400},
        {"side_data_type": "H.26[45] User Data Unregistered SEI message"},
    ]
    assert parse_side_data(side_data) == P3_1000
    assert parse_side_data([{"side_data_type": "H.26[45] User Data Unregistered SEI message"}]) is None
    only_light = parse_side_data([{"side_data_type": "Content light level metadata", "max_content": 400,
                                   "max_average": 100}])
    assert only_light is not None and not only_light.has_display and only_light.has_light_level


def test_encoder_parameters_in_each_encoders_units() -> None:
    assert x265_params(P3_1000) == ("hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)"
                                    "WP(15635,16450)L(10000000,1):max-cll=1000,400")
    assert svtav1_params(P3_1000) == ("mastering-display=G(0.2650,0.6900)B(0.1500,0.0600)R(0.6800,0.3200)"
                                      "WP(0.3127,0.3290)L(1000.0000,0.0001):content-light=1000,400")
    light = HdrMetadata(max_cll=400, max_fall=100)
    assert x265_params(light) == "hdr10=1:max-cll=400,100" and svtav1_params(light) == "content-light=400,100"


def test_build_command_passes_them_to_the_cpu_encoders(tmp_path: Path) -> None:
    source = make_hdr10_clip(tmp_path / "hdr.mkv")
    info = probe(source)
    hevc = build_command(info, defaults(), "cpu", "hevc", tmp_path / "o.mkv", hdr=P3_1000).args
    assert hevc[hevc.index("-x265-params:0") + 1] == "log-level=error:" + x265_params(P3_1000)
    av1 = build_command(info, defaults(), "cpu", "av1", tmp_path / "o.mkv", hdr=P3_1000).args
    assert av1[av1.index("-svtav1-params:0") + 1] == svtav1_params(P3_1000)
    assert "-svtav1-params:0" not in build_command(info, defaults(), "cpu", "av1", tmp_path / "o.mkv").args


@pytest.mark.parametrize(("source_codec", "target"), [("libsvtav1", "hevc"), ("libx265", "av1")])
def test_mastering_display_and_light_levels_survive_a_real_encode(media_dir: Path, source_codec: str,
                                                                  target: str) -> None:
    path = make_hdr10_clip(media_dir / "hdr10.mkv", vcodec=source_codec)
    before = read_hdr_metadata(path)
    assert before is not None and before.has_display and before.has_light_level
    result = transcode_file(TranscodeRequest(path, fast_settings(), family="cpu", codec=target))
    assert result.status == "done", result.reason
    after = read_hdr_metadata(path)
    assert probe(path).main_video.codec == target and after is not None
    assert (after.max_cll, after.max_fall) == (1000, 400)
    assert after.max_luminance == pytest.approx(1000.0)
    for name in ("red", "green", "blue", "white_point"):
        assert getattr(after, name) == pytest.approx(getattr(before, name), abs=0.0005)


def test_sdr_sources_have_none(h264_clip: Path, tmp_path: Path) -> None:
    assert read_hdr_metadata(h264_clip) is None
    plain_pq = make_clip(tmp_path / "pq.mkv", pix_fmt="yuv420p10le", hdr=True)
    assert read_hdr_metadata(plain_pq) is None
