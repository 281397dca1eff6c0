"""The replacement journal as a small file beside the media.

The journal is a plain dict (it is mirrored into the job row by the cluster)
and a JSON file next to the source, written atomically (temporary file,
fsync, rename, fsync of the folder) so a node can recover after a crash even
with the dashboard unreachable. It records who owns it (host, boot, process
and that process's start time) so recovery never touches a live job's files.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from codecshift.media.faults import fault_point
from codecshift.media.tempfiles import QUARANTINE_DIR, journal_path_for, parse_tag, role_of

VERSION = 1


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot, so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 else None


def owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "boot_id": _boot_id(), "pid": os.getpid(),
            "start": _start_ticks(os.getpid())}


def owner_alive(journal: dict[str, Any]) -> bool | None:
    """True if the process that wrote it still runs, False if it is gone, None if on another host."""
    who = journal.get("owner") or {}
    if who.get("host") != socket.gethostname():
        return None
    if who.get("boot_id") and who.get("boot_id") != _boot_id():
        return False
    pid = who.get("pid")
    if not isinstance(pid, int):
        return False
    start = _start_ticks(pid)
    return start is not None and start == who.get("start")


def new_journal(source: Path, temp: Path, tag: str, *, source_size: int, source_mtime_ns: int) -> dict[str, Any]:
    """A journal in its first step, "encoding": only the temporary output may exist."""
    return {
        "version": VERSION, "tag": tag, "step": "encoding",
        "source": str(source), "temp": str(temp), "final": None, "hold": None, "keep_path": None,
        "journal_file": str(journal_path_for(source, tag)),
        "source_size": source_size, "source_mtime_ns": source_mtime_ns,
        "output_size": None, "output_inode": None, "output_mtime_ns": None,
        "owner": owner(), "updated_at": time.time(),
    }


def fsync_dir(folder: Path | str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_journal(journal: dict[str, Any]) -> None:
    """Atomically replace the journal file with ``journal``."""
    journal["updated_at"] = time.time()
    path = Path(journal["journal_file"])
    scratch = path.with_name(path.name + ".tmp")
    data = json.dumps(journal, indent=1, sort_keys=True).encode()
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fault_point(f"journal:{journal['step']}")
    os.replace(scratch, path)
    fsync_dir(path.parent)


def remove_journal(journal: dict[str, Any]) -> None:
    path = Path(journal["journal_file"])
    for candidate in (path, path.with_name(path.name + ".tmp")):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(candidate)
    fsync_dir(path.parent)


def load_journal(path: Path | str) -> dict[str, Any]:
    """Read a journal file (or a half-written ``.tmp`` one: it is complete JSON or nothing)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("version") != VERSION or "step" not in data:
        raise ValueError(f"{path}: not a CodecShift journal")
    return data


def find_journals(folder: Path | str) -> list[Path]:
    """Journal files (and half-written ones) directly in ``folder``."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [Path(folder) / name for name in names if role_of(name) == "journal"]


class JournalError(ValueError):
    """A journal whose paths do not belong to its own job: never acted on."""


def _inside(path: str, folder: str) -> bool:
    clean = os.path.normpath(path)
    return clean == folder or clean.startswith(folder.rstrip("/") + "/")


def validate_journal(journal: dict[str, Any], *, source: str | None = None, tag: str | None = None,
                     backup_folder: str | None = None, any_keep_folder: bool = False) -> None:
    """Check that every path a journal names is one this job may touch, before anything
    acts on it: the temporary output, held original and journal file sit beside the
    source and carry the job's tag; the final path is the source's, or its name with
    another extension, in the same folder; a kept original goes to the quarantine beside
    it or under the backup folder. ``source``, ``tag`` and ``backup_folder`` are what
    the caller expects (the job's path as the node sees it, its tag, the setting);
    ``any_keep_folder`` is for recovery on a machine that does not know the setting."""
    if not isinstance(journal, dict):
        raise JournalError("the journal is not an object")
    journal_tag = journal.get("tag")
    if not isinstance(journal_tag, str) or (tag is not None and journal_tag != tag):
        raise JournalError(f"the journal's tag {journal_tag!r} is not this job's ({tag})")
    src = journal.get("source")
    if not isinstance(src, str) or not os.path.isabs(src) or os.path.normpath(src) != src:
        raise JournalError(f"the journal's source {src!r} is not a clean absolute path")
    if source is not None and src != os.path.normpath(source):
        raise JournalError(f"the journal's source {src} is not this job's file {source}")
    folder = os.path.dirname(src)
    for key in ("temp", "hold", "journal_file"):
        value = journal.get(key)
        if value is None and key == "hold":
            continue
        if not isinstance(value, str) or os.path.dirname(os.path.normpath(value)) != folder \
                or parse_tag(value) != journal_tag:
            raise JournalError(f"the journal's {key} {value!r} is not this job's file beside {src}")
    final = journal.get("final")
    if final is not None and (not isinstance(final, str) or os.path.normpath(final) != final
                              or os.path.dirname(final) != folder
                              or os.path.splitext(final)[0] != os.path.splitext(src)[0]):
        raise JournalError(f"the journal's final path {final!r} is not {src} or a new extension of it")
    keep = journal.get("keep_path")
    if keep is not None and not any_keep_folder:
        quarantine = os.path.join(folder, QUARANTINE_DIR, journal_tag)
        backup = os.path.normpath(os.path.expanduser(backup_folder)) if backup_folder else None
        if not isinstance(keep, str) or not (_inside(keep, quarantine) or (backup and _inside(keep, backup))) \
                or ".." in Path(keep).parts:
            raise JournalError(f"the journal's kept-original path {keep!r} is neither the quarantine nor "
                               "the backup folder")
