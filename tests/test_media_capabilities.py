"""Which encoders really work: real test encodes, a forced list, and `codecshift node probe`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codecshift.media.capabilities import families_for, families_of, probe_encoders

ROOT = Path(__file__).resolve().parent.parent
ALL = ["hevc_nvenc", "av1_nvenc", "hevc_qsv", "av1_qsv", "hevc_vaapi", "av1_vaapi", "libx265", "libsvtav1"]


@pytest.fixture(scope="module")
def checks():
    return probe_encoders()


def test_cpu_encoders_work_and_gpu_ones_report_why_not(checks) -> None:
    by_name = {check.name: check for check in checks}
    assert list(by_name) == ALL
    assert by_name["libx265"].works and by_name["libx265"].error is None
    assert by_name["libsvtav1"].works
    for name in ("hevc_nvenc", "hevc_qsv", "hevc_vaapi"):
        assert not by_name[name].works and by_name[name].error  # listed by ffmpeg, but no GPU here
    for name in ("av1_nvenc", "av1_qsv", "av1_vaapi"):
        assert by_name[name].error == f"this ffmpeg build has no {name} encoder"
    assert families_of(checks) == {"cpu": ["hevc", "av1"]}
    assert families_for(checks, "av1") == ["cpu"]


def test_forced_list_replaces_the_probe() -> None:
    forced = probe_encoders(["hevc_nvenc", "libx265"])
    working = [check.name for check in forced if check.works]
    assert working == ["hevc_nvenc", "libx265"]
    assert families_of(forced) == {"nvenc": ["hevc"], "cpu": ["hevc"]}
    assert families_for(forced, "av1") == []
    assert {c.error for c in forced if not c.works} == {"not in the forced list (CODECSHIFT_ENCODERS)"}
    with pytest.raises(ValueError, match="unknown encoder 'h264_nvenc'"):
        probe_encoders(["h264_nvenc"])


def _node_probe(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os
    env = {key: value for key, value in os.environ.items() if not key.startswith("CODECSHIFT_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "codecshift.cli.main", "node", "probe"], capture_output=True,
                          text=True, check=False, cwd=ROOT, env=env)


def test_node_probe_prints_json() -> None:
    result = _node_probe({})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ffmpeg"].startswith("ffmpeg version") and report["forced"] is False
    assert report["vmaf"] is False
    assert report["families"] == {"cpu": ["hevc", "av1"]}
    nvenc = next(e for e in report["encoders"] if e["name"] == "hevc_nvenc")
    assert nvenc["works"] is False and nvenc["error"]


def test_node_probe_honours_codecshift_encoders() -> None:
    result = _node_probe({"CODECSHIFT_ENCODERS": "hevc_qsv, libsvtav1"})
    report = json.loads(result.stdout)
    assert report["forced"] is True
    assert [e["name"] for e in report["encoders"] if e["works"]] == ["hevc_qsv", "libsvtav1"]
    assert report["families_by_codec"] == {"hevc": ["qsv"], "av1": ["cpu"]}
    bad = _node_probe({"CODECSHIFT_ENCODERS": "x264"})
    assert bad.returncode != 0 and "unknown encoder 'x264'" in bad.stderr
