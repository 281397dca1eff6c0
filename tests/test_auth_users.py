"""Local users: argon2 hashes, case-insensitive names, the last admin kept, session
versions bumped, and `codecshift user` on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from codecshift import users
from codecshift.db import engine_for, init_schema, session_scope
from codecshift.models import User


def _session_engine(url: str):  # type: ignore[no-untyped-def]
    engine = engine_for(url)
    init_schema(engine)
    return engine


def test_passwords_are_argon2_and_verify(database_url: str) -> None:
    engine = _session_engine(database_url)
    with session_scope(engine) as session:
        row = users.create_user(session, "Admin", "a-long-password", is_admin=True)
        assert row.password_hash.startswith("$argon2id$") and "a-long-password" not in row.password_hash
    with session_scope(engine) as session:
        assert users.authenticate(session, "admin", "a-long-password") is not None
        assert users.authenticate(session, "ADMIN", "a-long-password") is not None
        assert users.authenticate(session, "admin", "wrong-password") is None
        assert users.authenticate(session, "nobody", "a-long-password") is None
        assert users.authenticate(session, "", "") is None
        with pytest.raises(users.UserError, match="already exists"):
            users.create_user(session, "ADMIN", "another-password")
        with pytest.raises(users.UserError, match="at least 10"):
            users.create_user(session, "shorty", "short")
        with pytest.raises(users.UserError, match="user name"):
            users.create_user(session, "bad name!", "a-long-password")


def test_password_change_and_revocation_bump_the_session_version(sqlite_url: str) -> None:
    engine = _session_engine(sqlite_url)
    with session_scope(engine) as session:
        row = users.create_user(session, "ann", "first-password")
        before = row.session_version
        users.set_password(session, row, "second-password")
        assert row.session_version == before + 1
        users.revoke_sessions(row)
        assert row.session_version == before + 2
        assert users.authenticate(session, "ann", "second-password") is not None


def test_the_last_admin_stays(sqlite_url: str) -> None:
    engine = _session_engine(sqlite_url)
    with session_scope(engine) as session:
        first = users.create_user(session, "first", "first-password", is_admin=True)
        with pytest.raises(users.UserError, match="last admin"):
            users.delete_user(session, first)
        with pytest.raises(users.UserError, match="last admin"):
            users.set_admin(session, first, False)
        second = users.create_user(session, "second", "second-password", is_admin=True)
        users.set_admin(session, first, False)
        assert users.admin_count(session) == 1 and second.is_admin


def test_oidc_users_never_take_over_a_local_name(sqlite_url: str) -> None:
    engine = _session_engine(sqlite_url)
    with session_scope(engine) as session:
        users.create_user(session, "sam", "sams-password")
        oidc = users.oidc_user(session, "sub-1", preferred_name="sam", email="sam@example.com", is_admin=None)
        assert oidc.username == "sam-2" and oidc.password_hash is None and not oidc.is_admin
        again = users.oidc_user(session, "sub-1", preferred_name="renamed", email=None, is_admin=True)
        assert again.id == oidc.id and again.is_admin and again.email == "sam@example.com"
        assert users.authenticate(session, "sam-2", "") is None  # no password, no local sign-in


def _cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODECSHIFT_")}
    env["CODECSHIFT_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run([sys.executable, "-m", "codecshift.cli.main", "user", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_user_commands(tmp_path: Path) -> None:
    made = _cli(tmp_path, "create", "root", "--admin", "--password-stdin", stdin="root-password-1\n")
    assert made.returncode == 0, made.stderr
    assert "created (admin)" in made.stdout and "root-password-1" not in made.stdout
    prompted = _cli(tmp_path, "create", "viewer", stdin="viewer-password\nviewer-password\n")
    assert prompted.returncode == 0, prompted.stderr
    duplicate = _cli(tmp_path, "create", "ROOT", "--password-stdin", stdin="whatever-password\n")
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    short = _cli(tmp_path, "create", "x", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 10" in short.stderr
    listed = _cli(tmp_path, "list")
    assert "root" in listed.stdout and "admin" in listed.stdout and "viewer" in listed.stdout
    assert "argon2" not in listed.stdout
    assert _cli(tmp_path, "password", "viewer", "--password-stdin", stdin="new-viewer-pass\n").returncode == 0
    assert _cli(tmp_path, "revoke-sessions", "viewer").returncode == 0
    assert _cli(tmp_path, "role", "root", "user").returncode == 2  # the last admin
    assert _cli(tmp_path, "delete", "viewer", "--yes").returncode == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'codecshift.db'}")
    with session_scope(engine) as session:
        rows = {row.username: row for row in session.query(User)}
        assert set(rows) == {"root"}
        assert users.authenticate(session, "root", "root-password-1") is not None
    engine.dispose()
