"""`codecshift apikey`: keys for nodes and scripts, shown once and stored hashed."""

from __future__ import annotations

import click

from codecshift.apikeys import ROLES, ApiKeyError, create_key, list_keys, revoke_key
from codecshift.cli.context import CliError, engine
from codecshift.db import init_schema, session_scope


@click.group()
def apikey() -> None:
    """Create, list and revoke API keys."""


@apikey.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="node", show_default=True,
              help="node: only what nodes need; metrics: only /metrics; admin: the whole API.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the key (for scripts).")
def create(name: str, role: str, quiet: bool) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    init_schema(engine())
    with session_scope(engine()) as session:
        try:
            key = create_key(session, name, role)
        except ApiKeyError as exc:
            raise CliError(str(exc)) from None
    if quiet:
        click.echo(key.secret)
        return
    click.echo(f"API key {key.id} '{key.name}' ({key.role}) created. It is shown only this once:")
    click.echo(key.secret)


@apikey.command("list")
def list_command() -> None:
    """Keys with their role, creation, last use and revocation (never the key itself)."""
    with session_scope(engine()) as session:
        for key in list_keys(session):
            used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            click.echo(f"{key.id:>4}  {key.name:<24} {key.role:<6} last used {used:<25} {state}")


@apikey.command("revoke")
@click.argument("key_id", type=int)
def revoke(key_id: int) -> None:
    """Revoke a key at once."""
    with session_scope(engine()) as session:
        if not revoke_key(session, key_id):
            raise CliError(f"no active API key with id {key_id}")
    click.echo(f"API key {key_id} revoked")
