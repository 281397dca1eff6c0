"""Paths from requests are accepted only inside a library root (DESIGN.md §7)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from codecshift.models import Library
from web.api.errors import ApiError


def normalized(path: str, field: str = "path") -> str:
    """An absolute, normalised path; '..' tricks and relative paths are refused."""
    if not path.startswith("/"):
        raise ApiError(400, "validation_error", f"{field}: must be an absolute path", field=field)
    if any(part == ".." for part in path.split("/")):
        raise ApiError(400, "validation_error", f"{field}: must not contain '..'", field=field)
    return posixpath.normpath(path).replace("//", "/")


def is_inside(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return root == "/" or path == root or path.startswith(root + "/")


def inside_library(session: Session, path: str, libraries: Iterable[Library] | None = None,
                   field: str = "path") -> str:
    """``path`` normalised; a 400 naming ``field`` unless it lies inside a library root."""
    clean = normalized(path, field)
    candidates = list(libraries) if libraries is not None else list(session.scalars(select(Library)))
    if not any(is_inside(clean, root) for library in candidates for root in library.roots or []):
        where = "this library" if libraries is not None else "every library"
        raise ApiError(400, "outside_library", f"{field}: {clean} is outside {where}", field=field)
    return clean


def prefix_pattern(path: str) -> str:
    """The folder prefix a LIKE filter matches: everything under ``path``."""
    return path if path.endswith("/") else path + "/"
