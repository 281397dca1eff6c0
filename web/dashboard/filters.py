"""Jinja filters: sizes, durations, percentages and times as people read them."""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import Any

from flask import Flask

from codecshift.models import utcnow

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: Any) -> str:
    if value is None:
        return "–"
    size = float(value)
    sign = "-" if size < 0 else ""
    size = abs(size)
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1024
    return f"{sign}{size:.1f} PiB"


def human_duration(seconds: Any) -> str:
    if seconds is None:
        return "–"
    total = max(0, round(float(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def ago(moment: datetime | str | None) -> str:
    if moment is None:
        return "never"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    seconds = (utcnow() - moment).total_seconds()
    if seconds < 0:
        return "just now"
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def when(moment: datetime | str | None) -> str:
    """An absolute UTC time, for title attributes and tables."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{float(value):,.{digits}f}" if digits else f"{int(value):,}"


def percent(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1f}%"


def basename(path: str | None) -> str:
    return posixpath.basename(path or "") or (path or "")


def dirname(path: str | None) -> str:
    return posixpath.dirname(path or "")


def register(app: Flask) -> None:
    app.jinja_env.filters.update(bytes=human_bytes, duration=human_duration, ago=ago, when=when, number=number,
                                 percent=percent, basename=basename, dirname=dirname)
