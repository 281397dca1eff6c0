"""Everything a node does to one file: probe, decide, encode, verify, replace.

``transcode_file`` never raises for bad media, a failing encoder or a full
disk: it returns a result whose status is done, skipped, failed or cancelled,
with a reason a person can read and a short ``code`` a program can act on.
The original is never touched until a verified output exists, and then only
through the journal (see ``replace``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from codecshift.media.commands import DEFAULT_RENDER_DEVICE, build_command, describe, final_path
from codecshift.media.containers import UnsupportedStream, choose_container
from codecshift.media.decide import decide
from codecshift.media.hdr import read_hdr_metadata
from codecshift.media.journal import new_journal, remove_journal, write_journal
from codecshift.media.probe import MediaInfo, ProbeError, probe
from codecshift.media.profile import setting
from codecshift.media.progress import Progress
from codecshift.media.replace import ReplaceError, keep_path_for, replace_file
from codecshift.media.runner import run_ffmpeg
from codecshift.media.tempfiles import cli_tag, temp_path_for
from codecshift.media.verify import verify_output
from codecshift.registry import SettingError

log = logging.getLogger(__name__)
Status = Literal["done", "skipped", "failed", "cancelled"]
Stage = Literal["encoding", "verifying", "replacing"]


@dataclass(frozen=True)
class TranscodeRequest:
    source: Path
    settings: Mapping[str, Any]
    family: str | None = None  # None: decide picks from ``families`` (needs decide=True)
    codec: str | None = None  # None: the settings' target_codec
    tag: str = field(default_factory=cli_tag)
    expected_size: int | None = None  # the claim snapshot: abort if the source differs
    expected_mtime_ns: int | None = None
    quality: int | None = None
    preset: str | None = None
    keep_original: bool | None = None  # None: the settings' keep_original
    decide: bool = False  # apply the skip rules first (the CLI does; the cluster decided at scan)
    families: Sequence[str] = ()
    allow_symlink: bool = False  # an approved symlink: convert the file it points to
    render_device: str = DEFAULT_RENDER_DEVICE


@dataclass(frozen=True)
class Hooks:
    on_progress: Callable[[Progress], None] | None = None
    should_cancel: Callable[[], bool] | None = None  # polled about once a second
    on_stage: Callable[[Stage], None] | None = None
    persist_journal: Callable[[dict[str, Any]], None] | None = None  # must succeed before each step


@dataclass(frozen=True)
class TranscodeResult:
    status: Status
    code: str  # done, decided_skip, not_smaller, probe_error, encode_error, disk_full, ...
    reason: str
    source_path: str
    source_codec: str | None = None
    source_size: int | None = None
    output_size: int | None = None
    output_path: str | None = None
    encoder: str | None = None
    quality_metric: str | None = None
    quality_score: float | None = None
    encode_seconds: float = 0.0
    total_seconds: float = 0.0
    log_tail: str = ""
    kept_original: str | None = None
    notes: tuple[str, ...] = ()
    stage: str = "source"  # where it ended: source, probe, encoding, verifying, replacing, done

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def transcode_file(request: TranscodeRequest, hooks: Hooks | None = None) -> TranscodeResult:
    """Run the whole pipeline for one file; see the module docstring."""
    job = _Job(request, hooks or Hooks())
    try:
        return job.run()
    except SettingError as exc:
        job.abandon()
        return job.result("failed", "settings_error", f"settings: {exc}")
    except Exception as exc:  # a bug or a hook's error must not leave files behind
        log.exception("transcode of %s failed unexpectedly", request.source)
        job.abandon()
        return job.result("failed", "internal_error", f"unexpected error: {type(exc).__name__}: {exc}")


class _Job:
    """The state of one run, so any exit can clean up exactly what it made."""

    def __init__(self, request: TranscodeRequest, hooks: Hooks) -> None:
        self.request, self.hooks = request, hooks
        self.started = time.monotonic()
        self.source = Path(os.path.abspath(request.source))
        self.info: MediaInfo | None = None
        self.journal: dict[str, Any] | None = None
        self.fields: dict[str, Any] = {}

    def result(self, status: Status, code: str, reason: str, **extra: Any) -> TranscodeResult:
        values = {**self.fields, **extra}
        return TranscodeResult(status=status, code=code, reason=reason, source_path=str(self.request.source),
                               total_seconds=time.monotonic() - self.started, **values)

    def abandon(self) -> None:
        """Remove the temporary output and the journal, if the swap has not started."""
        if self.journal is not None and self.journal["step"] == "encoding":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.journal["temp"])
            remove_journal(self.journal)
            self.journal = None

    def stage(self, name: Stage) -> None:
        self.fields["stage"] = name
        if self.hooks.on_stage is not None:
            self.hooks.on_stage(name)

    def cancelled(self) -> bool:
        return bool(self.hooks.should_cancel and self.hooks.should_cancel())

    def run(self) -> TranscodeResult:
        request, settings = self.request, self.request.settings
        path = self.source
        if path.is_symlink():
            if not request.allow_symlink:
                return self.result("skipped", "approval_needed", "a symlink: awaiting approval")
            path = self.source = path.resolve()
        try:
            stat = os.stat(path)
        except OSError as exc:
            return self.result("failed", "source_missing", f"cannot read the source: {exc.strerror}")
        self.fields["source_size"] = stat.st_size
        snapshot = (stat.st_size if request.expected_size is None else request.expected_size,
                    stat.st_mtime_ns if request.expected_mtime_ns is None else request.expected_mtime_ns)
        if (stat.st_size, stat.st_mtime_ns) != snapshot:
            return self.result("failed", "source_changed", "the source changed since it was scanned; "
                               "it is left as it is")
        self.fields["stage"] = "probe"
        try:
            self.info = info = probe(path)
        except ProbeError as exc:
            return self.result("failed", "probe_error", f"not readable as media: {exc.message}")
        video = info.main_video
        self.fields["source_codec"] = video.codec if video else None
        codec = request.codec or setting(settings, "target_codec")
        family = request.family
        if request.decide:
            decision = decide(info, {**settings, "target_codec": codec}, size=stat.st_size,
                              families=[family] if family else request.families)
            if decision.action != "transcode":
                return self.result("skipped", "decided_skip", decision.reason)
            family = family or decision.family
        if video is None:
            return self.result("skipped", "decided_skip", "no video stream")
        if video.pix_fmt is None:
            return self.result("failed", "probe_error", "the video stream cannot be decoded (no pixel format "
                               "found: damaged or unsupported)")
        if family is None:
            return self.result("failed", "no_encoder", f"no working encoder family for {codec} here")
        try:
            choice = choose_container(info, codec)
        except UnsupportedStream as exc:
            return self.result("failed", "unsupported_stream", str(exc))
        final = final_path(path, choice.extension)
        if final != path and os.path.lexists(final):
            return self.result("failed", "path_taken", f"the container changes to {choice.extension} but "
                               f"{final} already exists; the original stays")
        temp = temp_path_for(path, request.tag, choice.extension)
        hdr = read_hdr_metadata(path, info.video_position or 0) if video.hdr == "pq" and family == "cpu" else None
        plan = build_command(info, settings, family, codec, temp, quality=request.quality,
                             preset=request.preset, render_device=request.render_device, container=choice, hdr=hdr)
        self.fields.update(encoder=plan.encoder, notes=(choice.reason,))
        log.info("%s: %s", path, describe(plan))
        problem = self._prepare(path, temp, snapshot)
        if problem:
            return self.result("failed", "not_writable", problem)
        return self._encode_verify_replace(plan.args, codec, final, snapshot)

    def _prepare(self, path: Path, temp: Path, snapshot: tuple[int, int]) -> str | None:
        """Write the journal and create the temporary output, or say why the folder refuses."""
        journal = new_journal(path, temp, self.request.tag, source_size=snapshot[0],
                              source_mtime_ns=snapshot[1])
        try:
            write_journal(journal)
            self.journal = journal
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)  # a leftover of this very tag, from a crash before its journal
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            self.abandon()
            with contextlib.suppress(OSError):
                remove_journal(journal)
            return f"cannot write beside the source in {path.parent}: {exc.strerror or exc}"
        return None

    def _encode_verify_replace(self, args: list[str], codec: str, final: Path,
                               snapshot: tuple[int, int]) -> TranscodeResult:
        assert self.info is not None and self.journal is not None
        settings, temp = self.request.settings, Path(self.journal["temp"])
        self.stage("encoding")
        run = run_ffmpeg(args, duration=self.info.duration, on_progress=self.hooks.on_progress,
                         should_cancel=self.hooks.should_cancel)
        self.fields.update(encode_seconds=run.elapsed, log_tail=run.log_tail)
        if run.cancelled:
            self.abandon()
            return self.result("cancelled", "cancelled", "cancelled during the encode")
        if not run.ok:
            self.abandon()
            code = "disk_full" if run.disk_full else "encode_error"
            return self.result("failed", code, run.error())
        if self.cancelled():
            self.abandon()
            return self.result("cancelled", "cancelled", "cancelled after the encode")

        self.stage("verifying")
        verdict = verify_output(self.info, temp, settings, codec, source_size=snapshot[0],
                                should_cancel=self.hooks.should_cancel)
        self.fields.update(quality_metric=verdict.quality_metric, quality_score=verdict.quality_score,
                           output_size=verdict.output.size if verdict.output else None,
                           notes=self.fields.get("notes", ()) + verdict.notes)
        if verdict.status != "ok":
            self.abandon()
            status: Status = {"cancelled": "cancelled", "not_smaller": "skipped"}.get(verdict.status, "failed")
            code = {"cancelled": "cancelled", "not_smaller": "not_smaller"}.get(verdict.status, "verify_failed")
            return self.result(status, code, verdict.reason)
        stat = os.stat(self.source)
        if (stat.st_size, stat.st_mtime_ns) != snapshot:
            self.abandon()
            return self.result("failed", "source_changed", "the source changed during the encode; it is "
                               "left as it is")
        _copy_ownership(self.source, temp)

        self.stage("replacing")
        keep = self.request.keep_original
        if keep is None:
            keep = setting(settings, "keep_original")
        keep_path = keep_path_for(self.source, self.request.tag, setting(settings, "backup_folder")) if keep \
            else None
        try:
            outcome = replace_file(self.journal, final=final, keep_path=keep_path,
                                   persist=self.hooks.persist_journal)
        except ReplaceError as exc:
            if self.journal["step"] == "encoding":  # refused before the first step: only our files to remove
                self.abandon()
            self.journal = None  # otherwise replace_file recovered, or kept the journal for a later recovery
            return self.result("failed", exc.code, exc.message)
        self.journal = None
        saved = (1 - verdict.output.size / snapshot[0]) * 100 if verdict.output and snapshot[0] else 0.0
        self.fields["stage"] = "done"
        return self.result("done", "done", f"replaced, {saved:.0f}% smaller ({verdict.reason})",
                           output_path=str(final), kept_original=outcome.kept_original)


def _copy_ownership(source: Path, target: Path) -> None:
    """The new file gets the original's permissions (and owner, where we may set it)."""
    stat = os.stat(source)
    with contextlib.suppress(OSError):
        os.chmod(target, stat.st_mode & 0o7777)
    with contextlib.suppress(OSError):
        if os.geteuid() == 0 or stat.st_uid == os.geteuid():
            os.chown(target, stat.st_uid, stat.st_gid)
