"""Per-app resources: the database engine, request sessions and the Celery client."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from codecshift.config import InfraSettings
from codecshift.db import session_factory

ENGINE_KEY = "codecshift.engine"
SETTINGS_KEY = "codecshift.settings"
CELERY_KEY = "codecshift.celery"


def init_resources(app: Flask, settings: InfraSettings, engine: Engine, celery_app: Any) -> None:
    app.extensions[SETTINGS_KEY] = settings
    app.extensions[ENGINE_KEY] = engine
    app.extensions[CELERY_KEY] = celery_app
    app.extensions["codecshift.sessions"] = session_factory(engine)
    app.teardown_appcontext(_close_session)


def infra() -> InfraSettings:
    return current_app.extensions[SETTINGS_KEY]


def engine() -> Engine:
    return current_app.extensions[ENGINE_KEY]


def celery() -> Any:
    return current_app.extensions[CELERY_KEY]


def db() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["codecshift.sessions"]()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
