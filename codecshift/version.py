"""The version, read from VERSION.txt: the only place it is written."""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

VERSION_FILE = Path(__file__).resolve().parent.parent / "VERSION.txt"


@functools.cache
def read_version() -> str:
    """Return VERSION.txt's content; an installed wheel falls back to its metadata,
    which setup.cfg also took from VERSION.txt at build time."""
    if VERSION_FILE.is_file():
        return VERSION_FILE.read_text(encoding="utf-8").strip()
    return metadata.version("codecshift")
