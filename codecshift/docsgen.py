"""Generate docs/settings.md and docs/configuration.md from the registry and the
infrastructure settings, so the documentation cannot drift from the code.

    python -m codecshift.docsgen        # rewrite both files
"""

from __future__ import annotations

import json
from pathlib import Path

from codecshift import registry
from codecshift.config import ENV_PREFIX, InfraSettings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _value(value: object) -> str:
    if isinstance(value, str):
        return f"`{value}`" if value else "(empty)"
    return f"`{json.dumps(value)}`"


def render_settings() -> str:
    lines = ["# Behaviour settings", "",
             "Generated from `codecshift/registry.py` by `python -m codecshift.docsgen`; do not edit.", "",
             "These live in the database (`worker_settings`), are edited on the dashboard's Settings page or",
             "with `PATCH /api/settings`, and are read by nodes over the API (secrets never leave the",
             "dashboard). Keys marked *per library* can be overridden in a library's profile. Keys marked",
             "*read-only here* are written only by their own flow (the Plex link, which checks the server",
             "first): the Settings page shows them and `PATCH /api/settings` refuses them.", ""]
    for group, settings in registry.groups().items():
        lines += [f"## {group}", "", "| Key | Type | Default | Range | Meaning |", "|---|---|---|---|---|"]
        for s in settings:
            kind = (s.type + (" (per library)" if s.per_library else "") + (", secret" if s.secret else "")
                    + (", read-only here" if s.managed else ""))
            default = "(empty)" if s.secret else _value(s.default)
            unit = f" {s.unit}" if s.unit else ""
            lines.append(f"| `{s.key}` | {kind} | {default}{unit} | {s.describe_range()} | {s.help} |")
        lines.append("")
    return "\n".join(lines)


def render_configuration() -> str:
    lines = ["# Configuration: CODECSHIFT_* environment variables", "",
             "Generated from `codecshift/config.py` by `python -m codecshift.docsgen`; do not edit.", "",
             "Infrastructure only: where the database and broker are, secrets, authentication. A bad value",
             "stops start-up with one line naming the variable. The defaults are embedded mode: SQLite and",
             "a filesystem broker inside `./codecshift-data`.", "",
             "| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in InfraSettings.model_fields.items():
        default = field.default if field.default_factory is None else field.default_factory()
        if isinstance(default, list):
            default = ",".join(default)
        lines.append(f"| `{ENV_PREFIX}{name.upper()}` | {_value(str(default))} | {field.description or ''} |")
    lines.append("")
    return "\n".join(lines)


def write_all() -> None:
    (DOCS / "settings.md").write_text(render_settings(), encoding="utf-8")
    (DOCS / "configuration.md").write_text(render_configuration(), encoding="utf-8")


if __name__ == "__main__":
    write_all()
