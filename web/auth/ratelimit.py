"""Sign-in attempt limits shared by every web worker process.

Counters live in the broker's Redis when the broker is Redis; otherwise (the
embedded mode's filesystem broker, or AMQP) in the database, so the gunicorn
workers of one dashboard count together either way. The ``limits`` library
(the engine of Flask-Limiter) does the windows; the database backend below is
its storage interface over one small table. Every attempt counts before the
password is checked, so parallel guesses cannot slip past the limit.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Engine, case, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from codecshift.config import InfraSettings
from codecshift.db import upsert_insert
from codecshift.models import RateLimitCounter
from web.extensions import ENGINE_KEY

log = logging.getLogger(__name__)
LIMITER_KEY = "codecshift.limiter"
_TABLE = RateLimitCounter.__table__


class DatabaseStorage(Storage):
    """Fixed-window counters in the ``rate_limit_counters`` table (one row per key)."""

    STORAGE_SCHEME = ["codecshift+db"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, *, engine: Engine,
                 **_options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self.engine = engine

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def _insert_missing(self, key: str, expires_at: float) -> Any:
        insert = upsert_insert(self.engine.dialect.name)
        return insert(_TABLE).values(key=key, count=0, expires_at=expires_at).on_conflict_do_nothing()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        expired = _TABLE.c.expires_at <= now
        with self.engine.begin() as conn:
            conn.execute(self._insert_missing(key, now + expiry))
            conn.execute(update(_TABLE).where(_TABLE.c.key == key).values(
                count=case((expired, amount), else_=_TABLE.c.count + amount),
                expires_at=case((expired, now + expiry), else_=_TABLE.c.expires_at)))
            count = conn.scalar(select(_TABLE.c.count).where(_TABLE.c.key == key))
            if random.random() < 0.02:  # keep the table small: forget long-finished windows
                conn.execute(delete(_TABLE).where(_TABLE.c.expires_at < now - 3600))
        return int(count or 0)

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            count = conn.scalar(select(_TABLE.c.count).where(_TABLE.c.key == key,
                                                             _TABLE.c.expires_at > time.time()))
        return int(count or 0)

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            expires = conn.scalar(select(_TABLE.c.expires_at).where(_TABLE.c.key == key))
        return float(expires) if expires is not None else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.scalar(select(func.count()).select_from(_TABLE))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(delete(_TABLE)).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(_TABLE).where(_TABLE.c.key == key))


def storage_for(settings: InfraSettings, engine: Engine) -> tuple[Storage, str]:
    """The shared counter storage and a short description of it for the docs and logs."""
    broker = settings.effective_broker_url
    if broker.startswith(("redis://", "rediss://", "unix://", "redis+", "socket://")):
        try:
            return storage_from_string(broker), "redis"
        except ConfigurationError as exc:
            # e.g. unix:// (a Redis socket as Celery may name it): limits has no such scheme.
            log.warning("sign-in rate limit: the broker URL's scheme %r is not one the rate limiter can "
                        "use (%s); counting in the database instead", broker.split(":", 1)[0], exc)
    return DatabaseStorage(engine=engine), "database"


@dataclass
class LoginLimiter:
    """Counts attempts per client address and per user name against the configured limits."""

    storage: Storage
    kind: str
    items: list[RateLimitItem]
    prefix: str

    def __post_init__(self) -> None:
        self.strategy = FixedWindowRateLimiter(self.storage)
        self.fallback = FixedWindowRateLimiter(MemoryStorage())

    def hit(self, scope: str, *identities: str) -> float | None:
        """Count one attempt for each identity; None when allowed, else seconds to wait."""
        wait: float | None = None
        for identity in identities:
            for item in self.items:
                strategy = self.strategy
                try:
                    allowed = strategy.hit(item, self.prefix, scope, identity)
                except Exception:
                    log.warning("rate-limit storage (%s) unreachable; counting in this process only",
                                self.kind, exc_info=True)
                    strategy = self.fallback
                    allowed = strategy.hit(item, self.prefix, scope, identity)
                if not allowed:
                    reset = strategy.get_window_stats(item, self.prefix, scope, identity).reset_time
                    wait = max(wait or 0.0, reset - time.time(), 1.0)
        return wait


def init_limiter(app: Flask, settings: InfraSettings) -> None:
    storage, kind = storage_for(settings, app.extensions[ENGINE_KEY])
    # Dashboards sharing one Redis keep apart: the prefix follows the secret key.
    digest = hashlib.sha256(app.config["SECRET_KEY"].encode("utf-8")).hexdigest()[:12]
    app.extensions[LIMITER_KEY] = LoginLimiter(storage=storage, kind=kind,
                                               items=parse_many(settings.login_rate_limit),
                                               prefix=f"codecshift-{digest}")


def login_limiter() -> LoginLimiter:
    return current_app.extensions[LIMITER_KEY]
