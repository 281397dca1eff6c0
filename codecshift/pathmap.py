"""Path mapping: translate a library's paths to what one machine sees, and back.

A library stores every path as its source sees it: Plex's own paths for a Plex
library, the folder as the control worker sees it for a folder library. Plex
in Docker may call a file ``/data/movies/A.mkv`` while a node mounts the same
share at ``/mnt/nas/movies``. Mappings say so, per prefix:

    {"from": "/data/movies", "to": "/mnt/nas/movies", "node": null}

Rules, in order of precedence for a given machine:

1. the machine's own ``CODECSHIFT_PATH_MAPPINGS`` (``node_overrides``),
2. library mappings whose ``node`` is that machine's name,
3. library mappings with no ``node`` (the defaults).

The first tier with any match decides; inside it the longest prefix wins.
Prefixes match on whole path components (``/data/movies`` never maps
``/data/movies2``). Windows paths (``D:\\Movies``, ``\\\\nas\\share``) match
case-insensitively with either separator, so a Plex server on Windows can be
mapped to Linux nodes. Everything here is a pure function over strings.
"""

from __future__ import annotations

import functools
import ntpath
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_WINDOWS_RE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")
_DRIVE_ONLY_RE = re.compile(r"^[A-Za-z]:\\?$")
NODE_ENV = "CODECSHIFT_PATH_MAPPINGS"
_KEYS = {"from", "to", "node"}


class PathMappingError(ValueError):
    """A mapping list that cannot be used; the message names the entry at fault.

    ``index`` is the entry's number (from 1) and ``key`` the field at fault, when known,
    so an API can name ``path_mappings.0.from``.
    """

    def __init__(self, message: str, *, index: int | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.key = key


@dataclass(frozen=True)
class PathMapping:
    """One prefix translation. ``origin`` says where it came from, for messages."""

    source: str
    target: str
    node: str | None = None
    origin: str = "library"  # library | node-env

    def describe(self) -> str:
        return f"{self.source} -> {self.target}"

    def as_json(self) -> dict[str, Any]:
        """The shape stored in Library.path_mappings."""
        return {"from": self.source, "to": self.target, "node": self.node}


@dataclass(frozen=True)
class MappedPath:
    """A translated path and the mapping that produced it (None: used unchanged)."""

    path: str
    mapping_used: PathMapping | None


# -- path helpers ------------------------------------------------------------

def is_windows_path(path: str) -> bool:
    return bool(_WINDOWS_RE.match(path))


def is_absolute(path: str) -> bool:
    return path.startswith("/") or is_windows_path(path)


def _normalize(path: str) -> str:
    """One separator style, no duplicate or trailing separators (the root stays)."""
    if is_windows_path(path):
        unc = path.startswith("\\\\")
        body = re.sub(r"[\\/]+", r"\\", path[2:] if unc else path)
        body = body.rstrip("\\")
        if unc:
            return "\\\\" + body
        return body + "\\" if _DRIVE_ONLY_RE.match(body) else body
    collapsed = re.sub(r"/+", "/", path)
    return collapsed.rstrip("/") or "/"


def _parts(path: str) -> list[str]:
    norm = _normalize(path)
    sep = "\\" if is_windows_path(path) else "/"
    return [part for part in norm.split(sep) if part]


@functools.lru_cache(maxsize=1024)
def _prefix(prefix: str) -> str:
    """A mapping prefix, normalised once (scans translate every file through the same few)."""
    return _normalize(prefix)


@functools.lru_cache(maxsize=1024)
def _depth(prefix: str) -> int:
    return len(_parts(prefix))


def _remainder(path: str, prefix: str) -> list[str] | None:
    """The components of ``path`` below ``prefix``, or None when it is not below it."""
    windows = is_windows_path(path)
    if windows != is_windows_path(prefix):
        return None
    if not windows:
        # Fast path for the common case, called once per file by scans.
        norm_path = _normalize(path) if "//" in path or path.endswith("/") else path
        norm_prefix = _prefix(prefix)
        if norm_prefix == "/":
            rest = norm_path[1:]
        elif norm_path == norm_prefix:
            rest = ""
        elif norm_path.startswith(norm_prefix) and norm_path[len(norm_prefix)] == "/":
            rest = norm_path[len(norm_prefix) + 1:]
        else:
            return None
        return rest.split("/") if rest else []
    path_parts, prefix_parts = _parts(path), _parts(prefix)
    head = [part.casefold() for part in path_parts[:len(prefix_parts)]]
    head_match = head == [part.casefold() for part in prefix_parts]
    unc_match = path.startswith("\\\\") == prefix.startswith("\\\\")
    if not (head_match and unc_match):
        return None
    return path_parts[len(prefix_parts):]


def _join(base: str, rest: list[str]) -> str:
    base = _prefix(base)
    if not rest:
        return base
    sep = "\\" if is_windows_path(base) else "/"
    return base.rstrip(sep) + sep + sep.join(rest)


# -- building mapping lists --------------------------------------------------

def _entry_label(index: int, entry: object) -> str:
    if isinstance(entry, Mapping):
        return f"mapping {index} ({entry.get('from')!r} -> {entry.get('to')!r})"
    return f"mapping {index}"


def path_problem(value: object) -> str | None:
    """Why ``value`` cannot be used as an absolute path from user input, or None."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty path"
    value = value.strip()
    if "\x00" in value:
        return "contains a NUL character"
    if not is_absolute(value):
        return f"must be an absolute path (got {value!r})"
    if ".." in re.split(r"[\\/]", value):
        return "must not contain '..'"
    return None


def clean_path(value: str) -> str:
    """An absolute path from user input, normalised (one separator style, no duplicate,
    trailing or ``.`` components); ValueError saying why when it cannot be used."""
    problem = path_problem(value)
    if problem:
        raise ValueError(problem)
    norm = _normalize(value.strip())
    if not is_windows_path(norm):
        return posixpath.normpath(norm).replace("//", "/")
    parts = [part for part in _parts(norm) if part != "."]
    if norm.startswith("\\\\"):
        return "\\\\" + "\\".join(parts)
    return parts[0] + "\\" + "\\".join(parts[1:])


def is_filesystem_root(path: str) -> bool:
    """``/``, a bare drive (``D:\\``) or a bare UNC host: too wide to be a library folder."""
    norm = _normalize(path)
    if norm == "/" or _DRIVE_ONLY_RE.match(norm):
        return True
    return norm.startswith("\\\\") and len(_parts(norm)) <= 1


def rebase(path: str, root: str) -> str | None:
    """``path`` spelled from ``root`` (the root's own spelling, so Windows case and separators
    follow the root) when it is ``root`` or below it, component by component; else None."""
    rest = _remainder(path, root)
    return None if rest is None else _join(root, rest)


def folder_prefix(path: str) -> str:
    """The prefix every path below folder ``path`` starts with (for LIKE filters)."""
    sep = "\\" if is_windows_path(path) else "/"
    return path if path.endswith(sep) else path + sep


def _check_path(label: str, key: str, value: object, index: int | None = None) -> str:
    problem = path_problem(value)
    if problem:
        raise PathMappingError(f"{label}: '{key}' {problem}", index=index, key=key)
    assert isinstance(value, str)
    return _normalize(value.strip())


def validate_mappings(raw: object) -> list[PathMapping]:
    """Check a mapping list from user input and return it normalised.

    Entries are numbered from 1 in messages, as a user counts rows in the editor.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PathMappingError("path mappings must be a list of {from, to, node} entries")
    result: list[PathMapping] = []
    seen: dict[tuple[str, str | None], int] = {}
    for index, entry in enumerate(raw, start=1):
        label = _entry_label(index, entry)
        if not isinstance(entry, Mapping):
            raise PathMappingError(f"{label}: must be an object with 'from' and 'to'", index=index)
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise PathMappingError(f"{label}: unknown field(s) {', '.join(map(str, unknown))}", index=index,
                                   key=str(unknown[0]))
        source = _check_path(label, "from", entry.get("from"), index)
        target = _check_path(label, "to", entry.get("to"), index)
        node = entry.get("node")
        if node is not None:
            if not isinstance(node, str):
                raise PathMappingError(f"{label}: 'node' must be a node name or null", index=index, key="node")
            node = node.strip() or None
        key = (source.casefold() if is_windows_path(source) else source, node)
        if key in seen:
            where = f"node {node!r}" if node else "every node"
            raise PathMappingError(f"{label}: duplicates mapping {seen[key]} (same 'from' for {where})",
                                   index=index, key="from")
        seen[key] = index
        result.append(PathMapping(source, target, node))
    return result


def mappings_to_json(mappings: Iterable[PathMapping]) -> list[dict[str, Any]]:
    return [mapping.as_json() for mapping in mappings]


def parse_node_overrides(pairs: Iterable[tuple[str, str]]) -> list[PathMapping]:
    """Validate a node's own FROM=TO pairs (InfraSettings.parsed_path_mappings())."""
    result: list[PathMapping] = []
    for index, (source, target) in enumerate(pairs, start=1):
        label = f"{NODE_ENV} entry {index} ({source}={target})"
        result.append(PathMapping(_check_path(label, "from", source), _check_path(label, "to", target),
                                  origin="node-env"))
    return result


def _coerce(items: Iterable[PathMapping | Mapping[str, Any]]) -> list[PathMapping]:
    """Accept stored JSON entries or PathMapping objects; stored lists were validated on save."""
    result = []
    for item in items:
        if isinstance(item, PathMapping):
            result.append(item)
        else:
            result.append(PathMapping(str(item["from"]), str(item["to"]), item.get("node") or None))
    return result


def _overrides(items: Iterable[PathMapping | tuple[str, str]]) -> list[PathMapping]:
    return [item if isinstance(item, PathMapping) else PathMapping(item[0], item[1], origin="node-env")
            for item in items]


def _tiers(mappings: Iterable[PathMapping | Mapping[str, Any]], node: str | None,
           node_overrides: Iterable[PathMapping | tuple[str, str]]) -> list[list[PathMapping]]:
    library = _coerce(mappings)
    own = [m for m in library if node is not None and m.node == node]
    defaults = [m for m in library if m.node is None]
    return [_overrides(node_overrides), own, defaults]


# -- translating -------------------------------------------------------------

def _translate(path: str, tiers: list[list[PathMapping]], reverse: bool) -> MappedPath:
    for tier in tiers:
        best: tuple[int, PathMapping, list[str]] | None = None
        for mapping in tier:
            prefix = mapping.target if reverse else mapping.source
            rest = _remainder(path, prefix)
            if rest is None:
                continue
            depth = _depth(prefix)
            if best is None or depth > best[0]:
                best = (depth, mapping, rest)
        if best is not None:
            _, mapping, rest = best
            return MappedPath(_join(mapping.source if reverse else mapping.target, rest), mapping)
    return MappedPath(path, None)


def to_local(path: str, mappings: Iterable[PathMapping | Mapping[str, Any]], node: str | None = None,
             node_overrides: Iterable[PathMapping | tuple[str, str]] = ()) -> MappedPath:
    """Where machine ``node`` finds the library path ``path`` (unchanged if nothing maps it)."""
    return _translate(path, _tiers(mappings, node, node_overrides), reverse=False)


def to_source(local_path: str, mappings: Iterable[PathMapping | Mapping[str, Any]],
              node: str | None = None,
              node_overrides: Iterable[PathMapping | tuple[str, str]] = ()) -> MappedPath:
    """The library's (e.g. Plex's) path for a file machine ``node`` calls ``local_path``."""
    return _translate(local_path, _tiers(mappings, node, node_overrides), reverse=True)


def parent_folder(path: str) -> str:
    """The folder holding ``path``, in the path's own separator style."""
    norm = _normalize(path)
    if is_windows_path(path):
        parent = ntpath.dirname(norm)
        return parent if _DRIVE_ONLY_RE.match(parent) else parent.rstrip("\\")
    return posixpath.dirname(norm) or "/"


def describe_unreachable(path: str, mapped: MappedPath, *, node: str | None = None,
                         library: str | None = None) -> str:
    """The message a machine reports when it cannot reach a library file.

    It names the mapping to fix (or says that none applied), so the user knows
    which row of which library to edit.
    """
    where = f"node {node}" if node else "this machine"
    lib = f" (library {library!r})" if library else ""
    shown = f"{mapped.path} (library path {path})" if mapped.path != path else path
    mapping = mapped.mapping_used
    if mapping is None:
        return (f"{shown} not found on {where}; no path mapping applies{lib}: add one if {where} "
                f"sees this folder under another path")
    if mapping.origin == "node-env":
        return (f"{shown} not found on {where}; mapping {mapping.describe()} ({NODE_ENV} on {where}) "
                f"may need fixing")
    scope = f", node {mapping.node}" if mapping.node else ""
    detail = f"library {library!r}{scope}" if library else (f"node {mapping.node}" if mapping.node else "")
    suffix = f" ({detail})" if detail else ""
    return f"{shown} not found on {where}; mapping {mapping.describe()}{suffix} may need fixing"
