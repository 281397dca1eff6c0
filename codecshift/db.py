"""Engines, sessions and schema creation for SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from codecshift import registry
from codecshift.models import Base, WorkerSetting


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the dashboard read while a worker writes; the busy timeout makes
    concurrent writers from several processes wait instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def normalize_url(url: str) -> str:
    """Pin plain postgresql:// URLs to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets its folder created and its pragmas set."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(url: str) -> Engine:
    """One shared engine per URL and process."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = make_engine(url)
        return engine


def dispose_engine(url: str) -> None:
    """Close and forget the shared engine for ``url`` (tests drop databases)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


def reset_after_fork() -> None:
    """In a forked child: drop the parent's pooled connections without closing them
    (they belong to the parent), so each process opens its own."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose(close=False)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def init_schema(engine: Engine) -> list[str]:
    """Create missing tables and insert missing default settings; safe to repeat.

    Returns the keys of the settings it inserted.
    """
    Base.metadata.create_all(engine)
    with session_scope(engine) as session:
        present = set(session.scalars(select(WorkerSetting.key)))
        missing = [key for key in registry.REGISTRY if key not in present]
        if missing:
            session.execute(insert(WorkerSetting), [
                {"key": key, "value": registry.encode(registry.REGISTRY[key].default)} for key in missing
            ])
    return missing


def upsert_insert(dialect_name: str) -> Any:
    """The dialect's INSERT with ON CONFLICT support (PostgreSQL or SQLite, the two we run on)."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def schema_ddl(dialect_name: str = "postgresql") -> str:
    """The CREATE statements the models produce for ``dialect_name``."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = _dialect(dialect_name)
    parts = []
    for table in Base.metadata.sorted_tables:
        parts.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)).strip() + ";")
        for index in sorted(table.indexes, key=lambda ix: ix.name or ""):
            parts.append(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)).strip() + ";")
    text_ = "\n\n".join(parts) + "\n"
    return "\n".join(line.rstrip() for line in text_.splitlines()) + "\n"


def _dialect(name: str) -> Any:
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.dialect()
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.dialect()
    raise ValueError(f"unknown dialect {name!r}; use postgresql or sqlite")
