"""Find media files under folders, skipping our own temporary files and quarantines."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from codecshift.media.tempfiles import is_codecshift_artifact

MEDIA_EXTENSIONS = frozenset({
    ".mkv", ".mp4", ".m4v", ".mov", ".avi", ".wmv", ".asf", ".ts", ".m2ts", ".mts", ".mpg", ".mpeg",
    ".vob", ".flv", ".webm", ".ogv", ".3gp", ".divx", ".rm", ".rmvb", ".mxf", ".dv",
})


def is_media_name(path: Path | str) -> bool:
    return Path(path).suffix.lower() in MEDIA_EXTENSIONS and not is_codecshift_artifact(path)


def iter_media_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Files named directly are taken as they are; folders are walked (sorted, symlinked
    folders not followed) for files with a video extension."""
    seen: set[str] = set()
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            if str(path) not in seen:
                seen.add(str(path))
                yield path
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not is_codecshift_artifact(d))
            for name in sorted(files):
                candidate = Path(folder) / name
                if is_media_name(candidate) and str(candidate) not in seen:
                    seen.add(str(candidate))
                    yield candidate


def folders_of(files: Iterable[Path]) -> list[Path]:
    """The distinct folders holding ``files``, in first-seen order."""
    result: dict[str, Path] = {}
    for file in files:
        result.setdefault(str(file.parent), file.parent)
    return list(result.values())
