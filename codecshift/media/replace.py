"""Swap a verified output in for its original through a journal, and recover any journal.

Steps, each recorded (journal file, then the ``persist`` hook) before it is taken:

1. ``hold_original``  rename the source S to a held name H beside it (same folder).
2. ``place_output``   rename the temporary output T to the final path F (S, or S
   with the new extension). This rename is the commit point.
3. ``keep_original``  move H to the backup or quarantine path B, or
   ``remove_original`` unlink H.
4. ``done``           the journal file is removed.

Renames never overwrite (``renameat2(RENAME_NOREPLACE)`` where the filesystem
has it). At every instant S or H holds the original and T or F the verified
output, so a crash anywhere leaves one of them whole. Recovery needs only the
journal and the filesystem: before the commit point it rolls back (H back to
S, T removed); after it, it rolls forward (H kept or removed). It is
idempotent, so the node and the control worker may both run it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from codecshift.media.faults import fault_point
from codecshift.media.journal import (
    find_journals,
    fsync_dir,
    load_journal,
    owner_alive,
    remove_journal,
    validate_journal,
    write_journal,
)
from codecshift.media.tempfiles import QUARANTINE_DIR, hold_path_for, partial_path_for

Persist = Callable[[dict[str, Any]], None]
RENAME_NOREPLACE = 1
AT_FDCWD = -100
try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
except (OSError, AttributeError):  # pragma: no cover - old glibc or not Linux
    _renameat2 = None


class ReplaceError(Exception):
    """The swap did not happen; ``code`` says why, the original is in place (see ``outcome``)."""

    def __init__(self, code: str, message: str, outcome: RecoveryOutcome | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.outcome = outcome


@dataclass(frozen=True)
class RecoveryOutcome:
    """Where a journal ended: the new file in place (rolled_forward), the original in place
    (rolled_back), a conflict left for a person, or not touched because its job still runs.
    ``changed`` says whether this call moved or removed anything (False on a repeat)."""

    action: Literal["rolled_back", "rolled_forward", "conflict", "skipped_live"]
    path: str | None  # the media file in place afterwards
    kept_original: str | None
    message: str
    changed: bool = True


def keep_path_for(source: Path, tag: str, backup_folder: str) -> Path:
    """Where a kept original goes: its absolute path mirrored under the backup folder (a name
    already taken gets the job's tag added), or ``.codecshift-quarantine/<tag>/`` beside it, a
    folder whose age tells cleanup when the retention started (the file keeps its own mtime)."""
    source = Path(os.path.abspath(source))
    if not backup_folder:
        return source.parent / QUARANTINE_DIR / tag / source.name
    target = Path(backup_folder).expanduser() / source.relative_to(source.anchor)
    if os.path.lexists(target):
        target = target.with_name(f"{target.stem}.{tag}{target.suffix}")
    return target


def _move_noreplace(src: Path, dst: Path) -> None:
    """Atomic rename that fails with FileExistsError instead of overwriting ``dst``."""
    if _renameat2 is not None:
        if _renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(src), None, str(dst))
    if os.path.lexists(dst):  # filesystems without RENAME_NOREPLACE (NFS, SMB): check, then rename
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path | str | None) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _record(journal: dict[str, Any], step: str, persist: Persist | None) -> None:
    journal["step"] = step
    write_journal(journal)
    if persist is not None:
        persist(dict(journal))


def replace_file(journal: dict[str, Any], *, final: Path, keep_path: Path | None,
                 persist: Persist | None = None) -> RecoveryOutcome:
    """Run the steps for a journal left in "encoding" with its verified output at ``temp``.

    Returns how it ended (rolled forward, the new file in place). Raises
    ReplaceError when the original stays, with the recovery outcome attached.
    """
    source, temp = Path(journal["source"]), Path(journal["temp"])
    _precheck(source, temp, final, keep_path, journal["tag"])
    _fsync_file(temp)  # the output's bytes are on disk before any name points at them
    stat = os.stat(temp)
    journal.update(final=str(final), hold=str(hold_path_for(source, journal["tag"])),
                   keep_path=str(keep_path) if keep_path else None, output_size=stat.st_size,
                   output_inode=stat.st_ino, output_mtime_ns=stat.st_mtime_ns)
    steps = ["hold_original", "place_output", "keep_original" if keep_path else "remove_original"]
    try:
        for step in steps:
            _record(journal, step, persist)
            fault_point(f"before:{step}")
            _STEPS[step](journal)
            fault_point(f"after:{step}")
    except Exception as exc:
        return _after_failure(journal, final, exc)
    journal["step"] = "done"
    with contextlib.suppress(OSError):  # the swap is complete; a full disk here changes nothing
        write_journal(journal)
    fault_point("before:done")
    if persist is not None:
        with contextlib.suppress(Exception):  # the swap is complete; recovery of "keep" is a no-op
            persist(dict(journal))
    remove_journal(journal)
    return RecoveryOutcome("rolled_forward", str(final), journal["keep_path"], "replaced")


def _precheck(source: Path, temp: Path, final: Path, keep_path: Path | None, tag: str) -> None:
    """Everything that can be known to fail before a single name changes."""
    if not temp.is_file():
        raise ReplaceError("output_missing", f"the verified output {temp} is missing")
    if final != source and os.path.lexists(final):
        raise ReplaceError("path_taken", f"the new path {final} is already taken; the original stays")
    if keep_path is not None and keep_path.parent.parent.name != QUARANTINE_DIR:
        # A backup folder elsewhere: prove it takes a file now. (The quarantine sits in the
        # media folder, which just took the output; it is made when the original moves in.)
        probe = partial_path_for(keep_path, tag)
        try:
            keep_path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(probe)
        except OSError as exc:
            raise ReplaceError("keep_unwritable", f"cannot keep the original in {keep_path.parent}: "
                               f"{exc.strerror or exc}") from None


def _after_failure(journal: dict[str, Any], final: Path, exc: Exception) -> RecoveryOutcome:
    """A step or its record failed: recover now; success if that rolled forward, else raise."""
    code = exc.code if isinstance(exc, ReplaceError) else "replace_error"
    message = exc.message if isinstance(exc, ReplaceError) else f"replacing failed: {exc}"
    try:
        outcome = recover(journal)
    except Exception as again:
        raise ReplaceError("recovery_failed", f"{message}; recovering at once failed too ({again}); "
                           f"the journal {journal['journal_file']} is kept for a later recovery") from exc
    if outcome.action == "rolled_forward" and _is_output(final, journal):
        return RecoveryOutcome("rolled_forward", str(final), outcome.kept_original,
                               f"replaced, after a hiccup ({message})")
    raise ReplaceError(code, f"{message}; {outcome.message}", outcome) from exc


def _hold_original(journal: dict[str, Any]) -> None:
    source = Path(journal["source"])
    stat = os.stat(source)
    if (stat.st_size, stat.st_mtime_ns) != (journal["source_size"], journal["source_mtime_ns"]):
        raise ReplaceError("source_changed", "the source changed during the encode; it is kept as it is")
    _move_noreplace(source, Path(journal["hold"]))
    fsync_dir(source.parent)


def _place_output(journal: dict[str, Any]) -> None:
    final = Path(journal["final"])
    _move_noreplace(Path(journal["temp"]), final)
    fsync_dir(final.parent)


def _remove_original(journal: dict[str, Any]) -> None:
    hold = Path(journal["hold"])
    _unlink(hold)
    fsync_dir(hold.parent)


def _keep_original(journal: dict[str, Any]) -> None:
    hold, keep = Path(journal["hold"]), Path(journal["keep_path"])
    keep.parent.mkdir(parents=True, exist_ok=True)
    try:
        _move_noreplace(hold, keep)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        partial = partial_path_for(keep, journal["tag"])
        _unlink(partial)
        shutil.copy2(hold, partial)
        _fsync_file(partial)
        fault_point("during:keep_original")
        _move_noreplace(partial, keep)
        fsync_dir(keep.parent)
        _unlink(hold)
    fsync_dir(keep.parent)
    fsync_dir(hold.parent)


_STEPS: dict[str, Callable[[dict[str, Any]], None]] = {
    "hold_original": _hold_original, "place_output": _place_output,
    "keep_original": _keep_original, "remove_original": _remove_original,
}


def _is_output(path: Path | None, journal: dict[str, Any]) -> bool:
    """Whether ``path`` is our verified output (same size, and same inode or mtime)."""
    if path is None:
        return False
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_size == journal.get("output_size") and (
        stat.st_ino == journal.get("output_inode") or stat.st_mtime_ns == journal.get("output_mtime_ns"))


def _path(journal: dict[str, Any], key: str) -> Path | None:
    value = journal.get(key)
    return Path(value) if value else None


def recover(journal: dict[str, Any]) -> RecoveryOutcome:
    """Bring the files of ``journal`` to a clean end from any step; safe to run again.

    Raises FileNotFoundError when the media folder is not visible from this machine
    (the control worker may not mount every library): nothing is touched then.
    """
    validate_journal(journal, any_keep_folder=True)  # a forged journal must not steer deletes
    source, temp, final = _path(journal, "source"), _path(journal, "temp"), _path(journal, "final")
    hold, keep = _path(journal, "hold"), _path(journal, "keep_path")
    if source is None or not source.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "the media folder is not visible here",
                                str(source.parent if source else None))
    partial = partial_path_for(keep, journal["tag"]) if keep else None
    if journal.get("step") == "done" or _is_output(final, journal):
        return _roll_forward(journal, final, hold, keep, partial)
    return _roll_back(journal, source, temp, hold, partial)


def _roll_back(journal: dict[str, Any], source: Path | None, temp: Path | None, hold: Path | None,
               partial: Path | None) -> RecoveryOutcome:
    assert source is not None
    changed = False
    if hold is not None and os.path.lexists(hold):
        if os.path.lexists(source):
            return RecoveryOutcome("conflict", str(source), str(hold),
                                   f"a new file appeared at {source} while the original waited at {hold}; "
                                   "both are kept for a person to sort out")
        _move_noreplace(hold, source)
        fsync_dir(source.parent)
        changed = True
    for leftover in (temp, partial):
        if leftover is not None and os.path.lexists(leftover):
            _unlink(leftover)
            changed = True
    _prune_quarantine(_path(journal, "keep_path"))
    remove_journal(journal)
    if not os.path.lexists(source):
        return RecoveryOutcome("conflict", None, None, f"the original {source} is missing and was not "
                               "moved by this job", changed)
    return RecoveryOutcome("rolled_back", str(source), None, f"rolled back: the original is in place at "
                           f"{source}", changed)


def _roll_forward(journal: dict[str, Any], final: Path | None, hold: Path | None, keep: Path | None,
                  partial: Path | None) -> RecoveryOutcome:
    changed = False
    if hold is not None and os.path.lexists(hold):
        changed = True
        if keep is None:
            _remove_original(journal)
        elif os.path.lexists(keep):  # a cross-filesystem copy finished; only the unlink was left
            _unlink(hold)
            fsync_dir(hold.parent)
        else:
            _unlink(partial)
            _keep_original(journal)
    if partial is not None and os.path.lexists(partial):
        _unlink(partial)
        changed = True
    remove_journal(journal)
    kept = str(keep) if keep is not None and os.path.lexists(keep) else None
    return RecoveryOutcome("rolled_forward", str(final) if final else None, kept,
                           f"rolled forward: the new file is in place at {final}", changed)


def _prune_quarantine(keep: Path | None) -> None:
    """Remove the empty ``.codecshift-quarantine/<tag>/`` made for an original that stayed home."""
    if keep is None or keep.parent.parent.name != QUARANTINE_DIR:
        return
    for folder in (keep.parent, keep.parent.parent):
        try:
            folder.rmdir()
        except OSError:  # not empty (other kept originals), or already gone
            return


def recover_folder(folder: Path | str, *, include_foreign: bool = False) -> list[RecoveryOutcome]:
    """Recover every journal in ``folder`` whose owner is gone (this host's, unless include_foreign)."""
    outcomes = []
    journals: dict[str, dict[str, Any]] = {}
    for path in find_journals(folder):  # sorted: a committed journal before its .tmp
        try:
            data = load_journal(path)
        except (OSError, ValueError):
            if path.name.endswith(".tmp"):
                _unlink(path)  # torn during its first write, before any media file was made
            continue
        journals.setdefault(data["journal_file"], data)
    for journal in journals.values():
        alive = owner_alive(journal)
        if alive or (alive is None and not include_foreign):
            why = "the job that owns this journal is still running" if alive else "owned by another host"
            outcomes.append(RecoveryOutcome("skipped_live", journal.get("source"), None, why))
            continue
        outcomes.append(recover(journal))
    return outcomes
