"""Paths from requests are accepted only inside a library root (DESIGN.md §7).

Built on ``codecshift.pathmap``'s normalisation, so a request path and a root are
compared the same way the scanner and the nodes compare them: component by
component, and for Windows roots (a Plex server on Windows) without regard to
case or separator.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from codecshift import pathmap
from codecshift.models import Library
from web.api.errors import ApiError


def normalized(path: str, field: str = "path") -> str:
    """An absolute, normalised path; '..' tricks, NUL and relative paths are refused."""
    try:
        return pathmap.clean_path(path)
    except ValueError as exc:
        raise ApiError(400, "validation_error", f"{field}: {exc}", field=field) from None


def is_inside(path: str, root: str) -> bool:
    return pathmap.rebase(path, root) is not None


def inside_library(session: Session, path: str, libraries: Iterable[Library] | None = None,
                   field: str = "path") -> str:
    """``path`` normalised and spelled as the library root holding it spells it (so a Windows
    root's case and separators are used); a 400 naming ``field`` unless it lies inside a root."""
    clean = normalized(path, field)
    candidates = list(libraries) if libraries is not None else list(session.scalars(select(Library)))
    for library in candidates:
        for root in library.roots or []:
            inside = pathmap.rebase(clean, root)
            if inside is not None:
                return inside
    where = "this library" if libraries is not None else "every library"
    raise ApiError(400, "outside_library", f"{field}: {clean} is outside {where}", field=field)


def prefix_pattern(path: str) -> str:
    """The folder prefix a LIKE filter matches: everything under ``path``."""
    return pathmap.folder_prefix(path)


def clean_root(root: str) -> str:
    """A folder library's root as the control worker sees it: an absolute POSIX path,
    normalised, without '..', and not '/' itself (ValueError saying why)."""
    if not isinstance(root, str) or not root.strip().startswith("/"):
        raise ValueError("must be an absolute path")
    clean = pathmap.clean_path(root)
    if pathmap.is_filesystem_root(clean):
        raise ValueError("'/' cannot be a library folder: choose the folder that holds the media")
    return clean


def clean_roots(roots: Iterable[str]) -> tuple[list[str], tuple[int, str] | None]:
    """Every root cleaned, or the first problem as (index, reason); duplicates are refused."""
    result: list[str] = []
    for index, root in enumerate(roots):
        try:
            clean = clean_root(root)
        except ValueError as exc:
            return [], (index, str(exc))
        if clean in result:
            return [], (index, "is listed twice")
        result.append(clean)
    return result, None
