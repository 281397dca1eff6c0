"""The command groups beyond `db`, imported lazily so `codecshift --version` stays fast
and one broken optional dependency cannot take the whole CLI down."""

from __future__ import annotations

import importlib

import click

# (module, attribute) of each command or group, in help order.
COMMANDS: list[tuple[str, str]] = [
    ("codecshift.cli.up_command", "up"),
    ("codecshift.cli.cluster_commands", "worker"),
    ("codecshift.cli.cluster_commands", "control"),
    ("codecshift.cli.cluster_commands", "beat"),
    ("codecshift.cli.cluster_commands", "web"),
    ("codecshift.cli.cluster_commands", "flower"),
    ("codecshift.cli.apikey_commands", "apikey"),
    ("codecshift.cli.user_commands", "user"),
    ("codecshift.cli.transcode_commands", "transcode"),
    ("codecshift.cli.node_commands", "node"),
]


def load() -> list[click.Command]:
    return [getattr(importlib.import_module(module), name) for module, name in COMMANDS]
