"""The library form: name, root folders, rescan interval, path mappings and the profile
(every per-library setting of the registry as an optional override). Every field is
checked and every error is reported beside its field; nothing is saved until all pass."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from codecshift import pathmap, registry
from codecshift.models import Library
from web.api.paths import clean_roots

NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
PROFILE_PREFIX = "profile."


def mappings_to_text(mappings: list[dict[str, Any]]) -> str:
    lines = []
    for m in mappings or []:
        line = f"{m.get('from')} => {m.get('to')}"
        if m.get("node"):
            line += f" @ {m['node']}"
        lines.append(line)
    return "\n".join(lines)


def parse_mappings(text: str) -> tuple[list[dict[str, Any]], str | None]:
    """Lines of ``FROM => TO`` or ``FROM => TO @ NODE``, checked like every other entry point
    (``pathmap.validate_mappings``: absolute paths, no '..' or NUL, no duplicates) and
    normalised; the first bad line is named."""
    result = []
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if "=>" not in line:
            return [], f"line {number}: write FROM => TO (optionally @ NODE)"
        source, _, rest = line.partition("=>")
        target, _, node = rest.partition(" @ ")
        source, target, node = source.strip(), target.strip(), node.strip()
        if node and not NODE_NAME.match(node):
            return [], f"line {number}: {node!r} is not a node name"
        result.append({"from": source, "to": target, "node": node or None})
        lines.append(number)
    try:
        return pathmap.mappings_to_json(pathmap.validate_mappings(result)), None
    except pathmap.PathMappingError as exc:
        where = f"line {lines[exc.index - 1]}: " if exc.index else ""
        return [], f"{where}{exc}"


@dataclass
class LibraryForm:
    name: str = ""
    roots_text: str = ""
    enabled: bool = True
    rescan: str = ""
    mappings_text: str = ""
    scan_after_save: bool = True
    profile: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_library(cls, library: Library) -> LibraryForm:
        return cls(name=library.name, roots_text="\n".join(library.roots or []), enabled=library.enabled,
                   rescan="" if library.rescan_interval_minutes is None else str(library.rescan_interval_minutes),
                   mappings_text=mappings_to_text(library.path_mappings), scan_after_save=False,
                   profile=dict(library.profile or {}))

    @classmethod
    def from_form(cls, form: MultiDict[str, str]) -> LibraryForm:
        profile = {}
        for key in registry.PER_LIBRARY_KEYS:
            raw = form.get(PROFILE_PREFIX + key, "").strip()
            if raw and key != "rescan_interval_minutes":
                profile[key] = raw
        return cls(name=form.get("name", "").strip(), roots_text=form.get("roots", ""),
                   enabled="true" in form.getlist("enabled"), rescan=form.get("rescan_interval_minutes", "").strip(),
                   mappings_text=form.get("path_mappings", ""), scan_after_save="true" in form.getlist("scan_now"),
                   profile=profile)

    def roots(self) -> list[str]:
        return [line.strip() for line in self.roots_text.splitlines() if line.strip()]

    def validate(self, fixed_roots: list[str] | None = None) -> dict[str, Any] | None:
        """The library's new values, or None with ``errors`` filled in.

        ``fixed_roots``: a Plex library's folders are its section's locations,
        Plex's own paths, so they are kept as they are rather than read from the form.
        """
        errors: dict[str, str] = {}
        if not self.name:
            errors["name"] = "a library needs a name"
        elif len(self.name) > 200:
            errors["name"] = "at most 200 characters"
        mappings, problem = parse_mappings(self.mappings_text)
        if problem:
            errors["path_mappings"] = problem
        roots = self.roots() if fixed_roots is None else list(fixed_roots)
        if not roots and fixed_roots is None:
            errors["roots"] = "add at least one folder"
        if fixed_roots is None and roots:
            typed = roots
            roots, problem = clean_roots(typed)
            if problem is not None:
                errors["roots"] = f"{typed[problem[0]]}: {problem[1]}"
        for root in roots if fixed_roots is None else ():
            local = pathmap.to_local(root, mappings).path
            if not os.path.isdir(local):
                errors["roots"] = f"{local} is not a folder the control worker can read"
                break
        rescan = None
        if self.rescan:
            try:
                rescan = registry.parse_value("rescan_interval_minutes", self.rescan)
            except registry.SettingError as exc:
                errors["rescan_interval_minutes"] = exc.reason
        profile = {}
        for key, raw in self.profile.items():
            try:
                profile[key] = registry.parse_value(key, raw)
            except registry.SettingError as exc:
                errors[PROFILE_PREFIX + key] = exc.reason
        self.errors = errors
        if errors:
            return None
        return {"name": self.name, "roots": roots, "enabled": self.enabled, "rescan_interval_minutes": rescan,
                "path_mappings": mappings, "profile": profile}
