"""API keys for nodes and scripts: generated once, stored as a hash, revocable.

A key looks like ``cs_<prefix>_<secret>``. The prefix finds the row by index;
the whole key is compared by its SHA-256 digest in constant time. Keys carry
256 bits of randomness, so a fast hash is enough (there is nothing to brute
force), and checking a key costs microseconds on every node request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from codecshift.models import ApiKey, utcnow

# node: only what nodes need; metrics: only /metrics (a Prometheus scrape key); webhook: only the
# webhook routes (Plex, Sonarr, Radarr), the one key that may travel in a URL; admin: all.
ROLES = ("node", "metrics", "webhook", "admin")
KEY_PREFIX = "cs_"
# last_used_at is written at most this often per key, so a busy node does not
# turn every request into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyError(ValueError):
    """A key name or role that cannot be used."""


@dataclass(frozen=True)
class NewKey:
    """A created key: ``secret`` is shown once and never stored."""

    id: int
    name: str
    role: str
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(session: Session, name: str, role: str = "node") -> NewKey:
    name = name.strip()
    if not name or len(name) > 200:
        raise ApiKeyError("a key needs a name of 1 to 200 characters")
    if role not in ROLES:
        raise ApiKeyError(f"role must be one of {', '.join(ROLES)}")
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, prefix=prefix, key_hash=_digest(secret), role=role)
    session.add(row)
    session.flush()
    return NewKey(id=row.id, name=name, role=role, secret=secret)


def _prefix_of(secret: str) -> str | None:
    if not secret.startswith(KEY_PREFIX):
        return None
    prefix, sep, _rest = secret[len(KEY_PREFIX):].partition("_")
    return prefix if sep and len(prefix) == 12 else None


def verify_key(session: Session, secret: str) -> ApiKey | None:
    """The live key row matching ``secret``, or None; records its last use."""
    prefix = _prefix_of(secret)
    if prefix is None:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _digest(secret)):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        session.commit()
    return row


def revoke_key(session: Session, key_id: int) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


def list_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query))


def delete_key(session: Session, key_id: int) -> bool:
    """Remove a key row for good (revoking keeps it listed with its history)."""
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


@dataclass(frozen=True)
class KeyView:
    """What may be shown about a key: the public prefix, never the hash or the secret."""

    id: int
    name: str
    role: str
    prefix: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "role": self.role, "prefix": f"{KEY_PREFIX}{self.prefix}",
                "created_at": self.created_at, "last_used_at": self.last_used_at,
                "revoked_at": self.revoked_at, "active": self.active}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def view(row: ApiKey) -> KeyView:
    return KeyView(id=row.id, name=row.name, role=row.role, prefix=row.prefix,
                   created_at=_iso(row.created_at) or "", last_used_at=_iso(row.last_used_at),
                   revoked_at=_iso(row.revoked_at))
