"""Read and write behaviour settings in the database, always through the registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from codecshift import registry
from codecshift.models import Library, WorkerSetting, utcnow


def load_all(session: Session) -> dict[str, Any]:
    """Every setting: the stored value where there is one, the default otherwise."""
    values = registry.defaults()
    for key, stored in session.execute(select(WorkerSetting.key, WorkerSetting.value)):
        if key in registry.REGISTRY:
            values[key] = registry.decode(key, stored)
    return values


def get(session: Session, key: str) -> Any:
    setting = registry.get_setting(key)
    stored = session.get(WorkerSetting, key)
    return registry.decode(key, stored.value) if stored else setting.parse(setting.default)


def set_value(session: Session, key: str, value: Any) -> Any:
    """Validate and store one value; returns the parsed value."""
    parsed = registry.parse_value(key, value)
    row = session.get(WorkerSetting, key)
    if row is None:
        session.add(WorkerSetting(key=key, value=registry.encode(parsed)))
    else:
        row.value = registry.encode(parsed)
        row.updated_at = utcnow()
    return parsed


def set_many(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every value first, so a bad one changes nothing; then store them all."""
    parsed = {key: registry.parse_value(key, value) for key, value in values.items()}
    for key, value in parsed.items():
        set_value(session, key, value)
    return parsed


def effective_for_library(global_values: Mapping[str, Any], library: Library | None) -> dict[str, Any]:
    """Global settings overlaid with a library's profile."""
    values = dict(global_values)
    if library is not None and library.profile:
        for key, value in library.profile.items():
            if key in registry.PER_LIBRARY_KEYS:
                values[key] = registry.parse_value(key, value)
    if library is not None and library.rescan_interval_minutes is not None:
        values["rescan_interval_minutes"] = library.rescan_interval_minutes
    return values
