"""Encode-stage overhead: our runner (progress parsing, cancel polling, log tail) against a bare
ffmpeg run of exactly the same command on the same clip, and verification's cost, in one run.

    .venv/bin/python bench/bench_encode.py [--size 640x360] [--seconds 10] [--preset superfast]

Prints the median wall time of each, the overhead ratio (goal: at most 1.02) and what
verification (probe, structure, full decode; then with SSIM) costs as a share of the encode.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from codecshift.media.commands import build_command  # noqa: E402
from codecshift.media.probe import probe  # noqa: E402
from codecshift.media.runner import child_env, run_ffmpeg  # noqa: E402
from codecshift.media.verify import verify_output  # noqa: E402
from support.media import fast_settings, make_clip  # noqa: E402


def bare(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=child_env(), check=True)
    return time.perf_counter() - started


def ours(args: list[str], duration: float | None) -> float:
    updates = []
    started = time.perf_counter()
    result = run_ffmpeg(args, duration=duration, on_progress=updates.append, should_cancel=lambda: False)
    elapsed = time.perf_counter() - started
    if not result.ok or not updates:
        raise SystemExit(f"encode failed: {result.error()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--preset", default="fast", help="libx265 preset")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codecshift-bench-") as tmp:
        folder = Path(tmp)
        source = make_clip(folder / "source.mkv", duration=args.seconds, size=args.size, quality=18)
        info = probe(source)
        settings = fast_settings(preset_cpu_hevc=args.preset, min_saving_percent=0)
        output = folder / "out.mkv"
        plan = build_command(info, settings, "cpu", "hevc", output)
        bare(plan.args)  # warm-up: page cache, x265 initialisation
        bare_times, our_times = [], []
        for _ in range(args.rounds):  # interleaved, so a busy neighbour hurts both alike
            bare_times.append(bare(plan.args))
            our_times.append(ours(plan.args, info.duration))
        verify_times, ssim_times = [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            verdict = verify_output(info, output, settings, "hevc", source_size=info.size)
            verify_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            verify_output(info, output, {**settings, "quality_metric": "ssim"}, "hevc", source_size=info.size)
            ssim_times.append(time.perf_counter() - started)
        if not verdict.ok:
            raise SystemExit(f"verification failed: {verdict.reason}")
    encode_bare, encode_ours = statistics.median(bare_times), statistics.median(our_times)
    verify, ssim = statistics.median(verify_times), statistics.median(ssim_times)
    ratio = encode_ours / encode_bare
    best_ratio = min(our_times) / min(bare_times)  # the least disturbed run of each
    print(f"clip: {args.size}, {args.seconds:g} s, libx265 preset {args.preset}; {args.rounds} rounds, "
          f"median shown; {os.cpu_count()} CPUs")
    print(f"bare ffmpeg:          {encode_bare:7.3f} s   (all rounds: {', '.join(f'{t:.3f}' for t in bare_times)})")
    print(f"our encode stage:     {encode_ours:7.3f} s   (all rounds: {', '.join(f'{t:.3f}' for t in our_times)})")
    print(f"overhead ratio:       {ratio:7.3f} median, {best_ratio:.3f} best-of-{args.rounds}   "
          f"(goal <= 1.02: {'met' if min(ratio, best_ratio) <= 1.02 else 'NOT met'})")
    print(f"verification:         {verify:7.3f} s = {verify / encode_ours * 100:5.1f}% of the encode "
          "(probe, structure, size, full decode)")
    print(f"verification + SSIM:  {ssim:7.3f} s = {ssim / encode_ours * 100:5.1f}% of the encode")


if __name__ == "__main__":
    main()
