"""People who sign in: local users with argon2 password hashes, and OIDC users.

A user's ``session_version`` is part of every session cookie's identity:
changing the password, or an admin revoking sessions, bumps it and every
cookie issued before stops working at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codecshift.models import User, utcnow

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")

# argon2id with the library's current defaults (RFC 9106 low-memory profile).
_HASHER = PasswordHasher()
# Verified against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("codecshift-no-such-user")


class UserError(ValueError):
    """A user name, password or change that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class UserView:
    """What may be shown about a user: never the hash."""

    id: int
    username: str
    is_admin: bool
    email: str | None
    kind: str  # local | oidc
    created_at: str
    last_login_at: str | None


def hash_password(password: str) -> str:
    check_password(password)
    return _HASHER.hash(password)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")


def check_username(username: str) -> str:
    username = username.strip()
    if not USERNAME_PATTERN.match(username):
        raise UserError("a user name has 1 to 200 letters, digits or . _ @ + - and starts with a letter or digit")
    return username


def find_user(session: Session, username: str) -> User | None:
    """Case-insensitive lookup, so 'Admin' and 'admin' are one account."""
    return session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))


def create_user(session: Session, username: str, password: str | None, *, is_admin: bool = False,
                email: str | None = None, oidc_subject: str | None = None) -> User:
    """A new user; local users need a password, OIDC users have none."""
    username = check_username(username)
    if find_user(session, username) is not None:
        raise UserError(f"a user named {username!r} already exists")
    if password is None and oidc_subject is None:
        raise UserError("a local user needs a password")
    row = User(username=username, password_hash=hash_password(password) if password is not None else None,
               is_admin=is_admin, email=email, oidc_subject=oidc_subject, session_version=0)
    session.add(row)
    session.flush()
    return row


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user if the password is right, else None; takes the same time either way."""
    user = find_user(session, username) if username.strip() else None
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash:
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    user.last_login_at = utcnow()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """A new password ends every session of the user."""
    user.password_hash = hash_password(password)
    revoke_sessions(user)


def revoke_sessions(user: User) -> None:
    user.session_version = (user.session_version or 0) + 1


def set_admin(session: Session, user: User, is_admin: bool) -> None:
    if user.is_admin and not is_admin and admin_count(session) <= 1:
        raise UserError("the last admin cannot lose the admin role")
    user.is_admin = is_admin


def delete_user(session: Session, user: User) -> None:
    if user.is_admin and admin_count(session) <= 1:
        raise UserError("the last admin cannot be deleted")
    session.delete(user)
    session.flush()


def admin_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User).where(User.is_admin.is_(True))) or 0


def admin_exists(session: Session) -> bool:
    return admin_count(session) > 0


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def view(user: User) -> UserView:
    return UserView(id=user.id, username=user.username, is_admin=bool(user.is_admin), email=user.email,
                    kind="oidc" if user.oidc_subject else "local",
                    created_at=user.created_at.isoformat(timespec="seconds"),
                    last_login_at=user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else None)


def oidc_user(session: Session, subject: str, *, preferred_name: str, email: str | None,
              is_admin: bool | None) -> User:
    """The user bound to ``subject``, created on first sign-in.

    ``is_admin`` None leaves the role alone (no admin claim configured);
    True/False follows the provider on every sign-in.
    """
    user = session.scalar(select(User).where(User.oidc_subject == subject))
    if user is None:
        user = User(username=_free_username(session, preferred_name or subject), password_hash=None,
                    is_admin=bool(is_admin), email=email, oidc_subject=subject, session_version=0)
        session.add(user)
    else:
        if email:
            user.email = email
        if is_admin is not None and bool(user.is_admin) != is_admin:
            user.is_admin = is_admin
    user.last_login_at = utcnow()
    session.flush()
    return user


def _free_username(session: Session, wanted: str) -> str:
    """An unused user name close to ``wanted`` (an OIDC user never takes over a local account)."""
    base = re.sub(r"[^A-Za-z0-9._@+-]", "-", wanted.strip())[:180].lstrip("._@+-") or "user"
    name, n = base, 1
    while find_user(session, name) is not None:
        n += 1
        name = f"{base}-{n}"
    return name
