"""Reach the real PostgreSQL and Redis; a test that cannot reach them fails loudly."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from codecshift.db import dispose_engine, normalize_url

POSTGRES_ADMIN_URL = os.environ.get("CODECSHIFT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("CODECSHIFT_TEST_REDIS", "redis://127.0.0.1:6379")


def _admin_engine():
    return create_engine(normalize_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def require_postgres() -> None:
    try:
        with _admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # pragma: no cover - the point is to fail loudly
        pytest.fail(f"PostgreSQL is required at {POSTGRES_ADMIN_URL} and could not be reached: {exc}",
                    pytrace=False)


@contextmanager
def fresh_postgres_database(prefix: str = "cs_test") -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def require_redis(db: int = 0) -> redis.Redis:
    client = redis.Redis.from_url(f"{REDIS_BASE_URL}/{db}")
    try:
        client.ping()
    except Exception as exc:  # pragma: no cover
        pytest.fail(f"Redis is required at {REDIS_BASE_URL} and could not be reached: {exc}", pytrace=False)
    return client


@contextmanager
def redis_database(ttl: int = 1800) -> Iterator[int]:
    """A Redis database number (1-15) nobody else uses meanwhile, flushed before and after,
    so concurrent test runs on one machine do not consume each other's messages."""
    lock_client = require_redis(0)
    token = uuid.uuid4().hex
    for _attempt in range(600):
        for number in range(1, 16):
            if lock_client.set(f"codecshift-test-db:{number}", token, nx=True, ex=ttl):
                client = require_redis(number)
                client.flushdb()
                try:
                    yield number
                finally:
                    client.flushdb()
                    if lock_client.get(f"codecshift-test-db:{number}") == token.encode():
                        lock_client.delete(f"codecshift-test-db:{number}")
                return
        import time

        time.sleep(1)
    pytest.fail("no free Redis database (1-15) for this test", pytrace=False)
