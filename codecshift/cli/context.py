"""What every command needs: the parsed settings and a ready database engine."""

from __future__ import annotations

import functools

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from codecshift.config import InfraSettings, load_settings
from codecshift.db import engine_for


class CliError(Exception):
    """A problem the user can fix, printed as one line without a traceback."""


@functools.cache
def settings() -> InfraSettings:
    return load_settings()


def engine() -> Engine:
    return engine_for(settings().effective_database_url)


def safe_url(url: str) -> str:
    """A URL fit for printing: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
