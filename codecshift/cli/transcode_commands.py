"""`codecshift transcode`: the whole pipeline on this machine, no cluster needed."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from codecshift.cli.context import settings as infra_settings
from codecshift.media.capabilities import families_for, probe_encoders
from codecshift.media.decide import decide
from codecshift.media.files import iter_media_files
from codecshift.media.pipeline import Hooks, TranscodeRequest, TranscodeResult, transcode_file
from codecshift.media.probe import ProbeError, probe
from codecshift.media.profile import ENCODER_FAMILY, FAMILY_ORDER
from codecshift.media.progress import Progress as EncodeProgress
from codecshift.media.replace import recover_folder
from codecshift.media.tempfiles import is_codecshift_artifact
from codecshift.registry import CODECS, SettingError, defaults, parse_value

ENCODER_CHOICES = ("auto", *FAMILY_ORDER, *ENCODER_FAMILY)


@dataclass
class _Interrupt:
    """Ctrl-C once: cancel the running encode cleanly (temp removed). Twice: stop at once."""

    requested: bool = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def _settings(overrides: Sequence[str], codec: str | None, family: str, keep: bool) -> dict[str, Any]:
    values = defaults()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        try:
            values[key.strip()] = parse_value(key.strip(), value)
        except SettingError as exc:
            raise click.BadParameter(str(exc), param_hint="--set") from None
    if codec:
        values["target_codec"] = codec
    if family != "auto":
        values["hardware_preference"] = family
    if keep:
        values["keep_original"] = True
    return values


def _resolve_encoder(encoder: str, codec: str | None) -> tuple[str, str | None]:
    """--encoder as (family or "auto", codec implied by an encoder name)."""
    if encoder in ENCODER_FAMILY:
        family, implied = ENCODER_FAMILY[encoder]
        if codec and codec != implied:
            raise click.BadParameter(f"{encoder} encodes {implied}, not {codec}", param_hint="--encoder")
        return family, implied
    return encoder, codec


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


@click.command("transcode")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the decisions only; change nothing.")
@click.option("--encoder", type=click.Choice(ENCODER_CHOICES), default="auto", show_default=True,
              help="An encoder family, or one encoder by name; auto picks the fastest that works here.")
@click.option("--codec", type=click.Choice(CODECS), help="Target codec (default: the target_codec setting).")
@click.option("--keep-original", is_flag=True, help="Keep originals (backup folder or quarantine).")
@click.option("--quality", type=click.IntRange(0, 255), help="Override the quality from the settings.")
@click.option("--preset", help="Override the encoder preset from the settings.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Any behaviour setting, e.g. --set min_file_size_mb=0 (repeatable).")
@click.option("--follow-symlinks", is_flag=True, help="Convert the files symlinks point to (otherwise "
              "they wait for approval).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON, without progress bars.")
def transcode(paths: tuple[Path, ...], dry_run: bool, encoder: str, codec: str | None, keep_original: bool,
              quality: int | None, preset: str | None, overrides: tuple[str, ...], follow_symlinks: bool,
              as_json: bool) -> None:
    """Convert PATH... (files, or folders walked for video files) on this machine."""
    family, codec = _resolve_encoder(encoder, codec)
    values = _settings(overrides, codec, family, keep_original)
    codec = values["target_codec"]
    err = Console(stderr=True)
    if not dry_run:
        _recover_interrupted(paths, err)
    files = list(iter_media_files(paths))
    if not files:
        err.print("No video files found.")
        return
    if family == "auto":
        checks = probe_encoders(infra_settings().encoders or None)
        families = families_for(checks, codec)
    else:
        families = [family]
    if dry_run:
        _dry_run(files, values, families, as_json, quality, preset)
        return
    results = _run_all(files, values, families, family, quality, preset, follow_symlinks, as_json, err)
    if as_json:
        click.echo(json.dumps([result.to_dict() for result in results], indent=1))
    else:
        _summary(results)
    if any(result.status == "cancelled" for result in results):
        sys.exit(130)
    if any(result.status == "failed" for result in results):
        sys.exit(1)


def _recover_interrupted(paths: Sequence[Path], err: Console) -> None:
    """Finish or undo replacements a killed earlier run left in these folders (journals of dead runs)."""
    folders: list[Path] = []
    for path in paths:
        if path.is_dir():
            for folder, dirs, _files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not is_codecshift_artifact(d))
                folders.append(Path(folder))
        else:
            folders.append(path.parent)
    for folder in dict.fromkeys(folders):
        for outcome in recover_folder(folder):
            if outcome.action != "skipped_live":
                err.print(f"[yellow]Recovered an interrupted job:[/] {outcome.message}")


def _run_all(files: list[Path], values: dict[str, Any], families: list[str], family: str,
             quality: int | None, preset: str | None, follow_symlinks: bool, quiet: bool,
             err: Console) -> list[TranscodeResult]:
    interrupt = _Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt)
    results: list[TranscodeResult] = []
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[detail]}"))
    try:
        with Progress(*columns, console=err, disable=quiet) as bars:
            for path in files:
                if interrupt.requested:
                    break
                task = bars.add_task(escape(path.name), total=100, detail="starting")
                request = TranscodeRequest(source=path, settings=values, family=None if family == "auto"
                                           else family, families=families, quality=quality, preset=preset,
                                           decide=True, allow_symlink=follow_symlinks)
                hooks = Hooks(on_progress=lambda p, t=task: _show(bars, t, p),
                              on_stage=lambda stage, t=task: bars.update(t, detail=stage),
                              should_cancel=lambda: interrupt.requested)
                result = transcode_file(request, hooks)
                bars.update(task, completed=100, detail=result.status)
                results.append(result)
    finally:
        signal.signal(signal.SIGINT, previous)
    return results


def _show(bars: Progress, task: TaskID, progress: EncodeProgress) -> None:
    parts = [f"{progress.fps:.0f} fps" if progress.fps else "", f"{progress.speed:.2f}x" if progress.speed else "",
             f"ETA {progress.eta_seconds:.0f} s" if progress.eta_seconds is not None else ""]
    bars.update(task, completed=progress.percent or 0, detail="  ".join(part for part in parts if part))


def _summary(results: list[TranscodeResult]) -> None:
    table = Table(title="CodecShift transcode")
    for name in ("File", "Before", "After", "Saved", "Time", "Verdict"):
        table.add_column(name, overflow="fold", justify="right" if name in ("Before", "After", "Saved",
                                                                              "Time") else "left")
    before = after = 0
    for result in results:
        saved = "-"
        if result.status == "done" and result.source_size and result.output_size is not None:
            before += result.source_size
            after += result.output_size
            saved = f"{(1 - result.output_size / result.source_size) * 100:.0f}%"
        verdict = result.status if result.status == "done" else f"{result.status}: {result.reason}"
        table.add_row(Text(result.source_path), _size(result.source_size),
                      _size(result.output_size if result.status == "done" else None), saved,
                      f"{result.total_seconds:.1f} s", Text(verdict))
    Console().print(table)
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed",
                                                                            "cancelled")}
    line = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    click.echo(f"{line}; saved {_size(before - after)}" if before else line)


def _dry_run(files: list[Path], values: dict[str, Any], families: list[str], as_json: bool, quality: int | None,
             preset: str | None) -> None:
    rows: list[dict[str, Any]] = []
    for path in files:
        row: dict[str, Any] = {"path": str(path), "size": None, "video_codec": None, "resolution": None}
        try:
            info = probe(path)
        except ProbeError as exc:
            rows.append({**row, "action": "failed", "reason": f"not readable as media: {exc.message}"})
            continue
        video = info.main_video
        decision = decide(info, values, size=info.size, is_symlink=path.is_symlink(), families=families)
        reason = decision.reason
        if decision.action != "skip" and (quality is not None or preset):
            given = [f"quality {quality}" if quality is not None else "", f"preset {preset}" if preset else ""]
            reason += f" (overridden: {' '.join(part for part in given if part)})"
        rows.append({**row, "size": info.size, "video_codec": video.codec if video else None,
                     "resolution": f"{video.width}x{video.height}" if video else None,
                     "action": decision.action, "reason": reason, "encoder": decision.encoder})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    else:
        table = Table(title="CodecShift transcode --dry-run")
        for name in ("File", "Codec", "Resolution", "Size", "Action", "Reason"):
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(Text(row["path"]), row["video_codec"] or "-", row["resolution"] or "-",
                          _size(row["size"]), row["action"], Text(row["reason"]))
        Console().print(table)
    if any(row["action"] == "failed" for row in rows):
        sys.exit(1)
