"""Which encoders really work on this machine.

Listing ``ffmpeg -encoders`` is not enough: a build lists hevc_nvenc whether
or not there is an NVIDIA GPU and driver. Each encoder gets a tiny real test
encode (three black frames to the null muxer) and either works or reports
ffmpeg's own error. ``CODECSHIFT_ENCODERS`` (or ``forced``) replaces the probe
with a fixed list, for tests and for users who know better.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from codecshift.media.commands import DEFAULT_RENDER_DEVICE, FFMPEG, capability_args
from codecshift.media.profile import ENCODER_FAMILY, ENCODERS, FAMILY_ORDER
from codecshift.media.runner import spawn, stop

TEST_TIMEOUT = 60.0
_ADDRESS_RE = re.compile(r"^\[([^\]@]+?) @ 0x[0-9a-f]+\] ")


def encoders_in_build() -> set[str] | None:
    """Encoder names this ffmpeg was built with; None when ffmpeg cannot be run."""
    try:
        listing = subprocess.run([FFMPEG, "-hide_banner", "-encoders"], capture_output=True, text=True,
                                 timeout=TEST_TIMEOUT, check=False, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {parts[1] for parts in (line.split() for line in listing.splitlines())
            if len(parts) > 1 and len(parts[0]) == 6 and parts[0][0] == "V"}


@dataclass(frozen=True)
class EncoderCheck:
    name: str
    family: str
    codec: str
    works: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _test(encoder: str, render_device: str) -> EncoderCheck:
    family, codec = ENCODER_FAMILY[encoder]
    try:
        process = spawn(capability_args(encoder, family, render_device))
    except OSError as exc:
        return EncoderCheck(encoder, family, codec, False, f"cannot run {FFMPEG}: {exc.strerror or exc}")
    try:
        _, stderr = process.communicate(timeout=TEST_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop(process)
        process.communicate()
        return EncoderCheck(encoder, family, codec, False, f"test encode took over {TEST_TIMEOUT:g} s")
    if process.returncode == 0:
        return EncoderCheck(encoder, family, codec, True)
    lines = [_ADDRESS_RE.sub(r"\1: ", line.strip())
             for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    detail = " | ".join(lines[:3])[:400] or f"ffmpeg exited with code {process.returncode}"
    return EncoderCheck(encoder, family, codec, False, detail)


def probe_encoders(forced: Sequence[str] | None = None, *,
                   render_device: str = DEFAULT_RENDER_DEVICE) -> list[EncoderCheck]:
    """One check per known encoder, in family order (nvenc, qsv, vaapi, cpu)."""
    names = [ENCODERS[(family, codec)] for family in FAMILY_ORDER for codec in ("hevc", "av1")]
    if forced:
        unknown = [name for name in forced if name not in ENCODER_FAMILY]
        if unknown:
            raise ValueError(f"unknown encoder {unknown[0]!r} in the forced list; known: {', '.join(names)}")
        return [EncoderCheck(name, *ENCODER_FAMILY[name], works=name in forced,
                             error=None if name in forced else "not in the forced list (CODECSHIFT_ENCODERS)")
                for name in names]
    built = encoders_in_build()

    def check(name: str) -> EncoderCheck:
        if built is not None and name not in built:
            return EncoderCheck(name, *ENCODER_FAMILY[name], works=False,
                                error=f"this ffmpeg build has no {name} encoder")
        return _test(name, render_device)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(check, names))


def families_of(checks: Iterable[EncoderCheck]) -> dict[str, list[str]]:
    """Family -> the codecs it really encodes here, fastest family first; families with none left out."""
    result: dict[str, list[str]] = {}
    checks = list(checks)
    for family in FAMILY_ORDER:
        codecs = [check.codec for check in checks if check.family == family and check.works]
        if codecs:
            result[family] = codecs
    return result


def families_for(checks: Iterable[EncoderCheck], codec: str) -> list[str]:
    """Families that encode ``codec`` here, fastest first: what ``decide`` takes as ``families``."""
    return [family for family, codecs in families_of(checks).items() if codec in codecs]


def working_encoders(checks: Iterable[EncoderCheck]) -> list[str]:
    return [check.name for check in checks if check.works]


def ffmpeg_version() -> str | None:
    """The first line of ``ffmpeg -version``, e.g. "ffmpeg version 5.1.6-0+deb12u1"."""
    try:
        output = subprocess.run([FFMPEG, "-version"], capture_output=True, text=True, timeout=TEST_TIMEOUT,
                                check=False, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = output.splitlines()[0] if output else ""
    return " ".join(first.split()[:3]) or None
