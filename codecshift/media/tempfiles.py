"""Names of the files the engine leaves beside media while it works.

Every temporary output, held original, partial copy and journal sits in the
same folder as the source (same filesystem, so renames are atomic) and is
named ``.codecshift-<tag>.<role>.<name>``: hidden from media servers, skipped by
the scanner, and tied to its job by the tag so cleanup can tell a live job's
files from leftovers. Tags are ``job<ID>-a<ATTEMPT>`` for cluster jobs and
``cli-<hex>`` for the command line.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

PREFIX = ".codecshift-"
QUARANTINE_DIR = ".codecshift-quarantine"
ROLES = ("out", "orig", "partial", "journal")
_NAME_MAX = 255  # bytes, the limit of every common Linux filesystem
_TAG_RE = re.compile(r"^(job(\d+)-a(\d+)|cli-[0-9a-f]{6,32})$")
_NAME_RE = re.compile(r"^\.codecshift-(job\d+-a\d+|cli-[0-9a-f]{6,32})\.(out|orig|partial|journal)\.")


def job_tag(job_id: int, attempt: int) -> str:
    """The tag of a cluster job's attempt."""
    return f"job{int(job_id)}-a{int(attempt)}"


def cli_tag() -> str:
    """A fresh tag for one command-line run on one file."""
    return f"cli-{secrets.token_hex(6)}"


def check_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise ValueError(f"not a CodecShift tag: {tag!r} (expected job<ID>-a<N> or cli-<hex>)")
    return tag


def artifact_name(tag: str, role: str, name: str) -> str:
    """``.codecshift-<tag>.<role>.<name>``, shortened in the middle to fit 255 bytes."""
    check_tag(tag)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    head = f"{PREFIX}{tag}.{role}."
    room = _NAME_MAX - len(head.encode())
    if len(name.encode()) > room:
        stem, dot, suffix = name.rpartition(".")
        if not dot or len(suffix.encode()) >= 16:
            stem, suffix = name, ""
        keep_suffix = f".{suffix}" if suffix else ""
        budget = room - len(keep_suffix.encode())
        name = stem.encode()[:budget].decode(errors="ignore") + keep_suffix
    return head + name


def temp_path_for(source: Path | str, tag: str, suffix: str) -> Path:
    """Where the encode of ``source`` writes its output: beside it, ending in ``suffix``."""
    source = Path(source)
    if not suffix.startswith("."):
        suffix = "." + suffix
    return source.with_name(artifact_name(tag, "out", source.stem + suffix))


def hold_path_for(source: Path | str, tag: str) -> Path:
    """Where the original waits, beside itself, while the output is renamed into place."""
    source = Path(source)
    return source.with_name(artifact_name(tag, "orig", source.name))


def partial_path_for(target: Path | str, tag: str) -> Path:
    """A copy of the original in progress to a backup folder on another filesystem."""
    target = Path(target)
    return target.with_name(artifact_name(tag, "partial", target.name))


def journal_path_for(source: Path | str, tag: str) -> Path:
    source = Path(source)
    return source.with_name(artifact_name(tag, "journal", source.name + ".json"))


def parse_tag(path: Path | str) -> str | None:
    """The tag in an artifact's name, or None for anything else."""
    match = _NAME_RE.match(Path(path).name)
    return match.group(1) if match else None


def role_of(path: Path | str) -> str | None:
    match = _NAME_RE.match(Path(path).name)
    return match.group(2) if match else None


def job_of_tag(tag: str) -> tuple[int, int] | None:
    """(job id, attempt) of a cluster tag; None for CLI tags or anything else."""
    match = _TAG_RE.match(tag)
    if not match or match.group(2) is None:
        return None
    return int(match.group(2)), int(match.group(3))


def is_codecshift_artifact(path: Path | str) -> bool:
    """True for our temporary files and anything inside a quarantine folder: scanners skip them."""
    path = Path(path)
    if path.name.startswith(PREFIX) or path.name == QUARANTINE_DIR:
        return True
    return QUARANTINE_DIR in path.parts


def is_disposable(path: Path | str) -> bool:
    """Whether age-based cleanup may delete this file once its job is no longer live.

    Only temporary outputs and partial copies. A held original (``orig``) is the only
    copy of the user's file during a swap, and a journal says where it is: those go
    through ``replace.recover`` instead, never through a delete.
    """
    return role_of(path) in ("out", "partial")


def is_quarantine_dir(path: Path | str) -> bool:
    """A folder of kept originals: one subfolder per job tag, so its age is when it was filled."""
    return Path(path).name == QUARANTINE_DIR


def find_artifacts(folder: Path | str) -> list[Path]:
    """Our files directly inside ``folder`` (not recursive), sorted."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(Path(folder) / name for name in names if _NAME_RE.match(name))
