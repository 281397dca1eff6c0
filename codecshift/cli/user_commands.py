"""`codecshift user`: local accounts for people who sign in to the dashboard."""

from __future__ import annotations

import sys

import click

from codecshift.cli.context import CliError, engine
from codecshift.db import init_schema, session_scope
from codecshift.users import (
    UserError,
    create_user,
    delete_user,
    find_user,
    list_users,
    revoke_sessions,
    set_admin,
    set_password,
)


@click.group()
def user() -> None:
    """Create, list and change dashboard users."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@user.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May change settings, users and keys.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def create(name: str, admin: bool, password_stdin: bool) -> None:
    """Create a local user (the first admin can also be made at /setup)."""
    init_schema(engine())
    password = _read_password(password_stdin)
    with session_scope(engine()) as session:
        try:
            row = create_user(session, name, password, is_admin=admin)
        except UserError as exc:
            raise CliError(str(exc)) from None
        click.echo(f"user {row.username!r} created{' (admin)' if admin else ''}")


@user.command("list")
def list_command() -> None:
    """Users with their role, kind and last sign-in (never a password hash)."""
    with session_scope(engine()) as session:
        for row in list_users(session):
            kind = "oidc" if row.oidc_subject else "local"
            last = row.last_login_at.isoformat(timespec="seconds") if row.last_login_at else "never"
            click.echo(f"{row.id:>4}  {row.username:<24} {'admin' if row.is_admin else 'user':<6} "
                       f"{kind:<6} last sign-in {last}")


def _user(session, name: str):  # type: ignore[no-untyped-def]
    row = find_user(session, name)
    if row is None:
        raise CliError(f"no user named {name!r}")
    return row


@user.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def password(name: str, password_stdin: bool) -> None:
    """Set a user's password; the user's open sessions end."""
    new = _read_password(password_stdin)
    with session_scope(engine()) as session:
        try:
            set_password(session, _user(session, name), new)
        except UserError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"password of {name!r} changed; its sessions are signed out")


@user.command("revoke-sessions")
@click.argument("name")
def revoke(name: str) -> None:
    """Sign a user out everywhere."""
    with session_scope(engine()) as session:
        revoke_sessions(_user(session, name))
    click.echo(f"every session of {name!r} is signed out")


@user.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["admin", "user"]))
def role(name: str, role: str) -> None:
    """Make a user an admin or a plain (read-only) user."""
    with session_scope(engine()) as session:
        try:
            set_admin(session, _user(session, name), role == "admin")
        except UserError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"{name!r} is now {role}")


@user.command("delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete this user?")
def delete(name: str) -> None:
    """Delete a user (the last admin cannot be deleted)."""
    with session_scope(engine()) as session:
        try:
            delete_user(session, _user(session, name))
        except UserError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"user {name!r} deleted")
