"""The command groups beyond `db`, imported lazily so `codecshift --version` stays fast
and one broken optional dependency cannot take the whole CLI down."""

from __future__ import annotations

import importlib

import click

# (module, attribute) of each command or group, in help order.
COMMANDS: list[tuple[str, str]] = []


def load() -> list[click.Command]:
    return [getattr(importlib.import_module(module), name) for module, name in COMMANDS]
