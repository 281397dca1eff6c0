"""`codecshift node`: what a transcode node can do, and its crash recovery."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from codecshift.cli.context import settings as infra_settings
from codecshift.media.capabilities import families_for, families_of, ffmpeg_version, probe_encoders
from codecshift.media.commands import DEFAULT_RENDER_DEVICE
from codecshift.media.quality import has_libvmaf
from codecshift.media.replace import recover_folder
from codecshift.media.tempfiles import QUARANTINE_DIR
from codecshift.registry import CODECS


@click.group()
def node() -> None:
    """Commands for a transcode node."""


@node.command("probe")
@click.option("--render-device", default=DEFAULT_RENDER_DEVICE, show_default=True,
              help="DRM render node used by QSV and VAAPI.")
def node_probe(render_device: str) -> None:
    """Test-encode with every known encoder and print JSON: which work, and why not."""
    forced = infra_settings().encoders
    try:
        checks = probe_encoders(forced or None, render_device=render_device)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="CODECSHIFT_ENCODERS") from None
    report = {
        "ffmpeg": ffmpeg_version(),
        "forced": bool(forced),
        "encoders": [check.to_dict() for check in checks],
        "families": families_of(checks),
        "families_by_codec": {codec: families_for(checks, codec) for codec in CODECS},
        "vmaf": has_libvmaf(),
    }
    click.echo(json.dumps(report, indent=2))


@node.command("recover")
@click.argument("folders", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--include-foreign", is_flag=True, help="Also recover journals written on other hosts "
              "(only when those jobs are surely dead).")
def node_recover(folders: tuple[Path, ...], include_foreign: bool) -> None:
    """Finish or undo interrupted replacements found under FOLDERS (journals of dead jobs only)."""
    count = 0
    for root in folders:
        for folder, dirs, _files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != QUARANTINE_DIR)
            for outcome in recover_folder(folder, include_foreign=include_foreign):
                count += 1
                click.echo(f"{outcome.action}: {outcome.message}")
    click.echo(f"{count} journal(s) found")
