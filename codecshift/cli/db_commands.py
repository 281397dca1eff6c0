"""`codecshift db`: create the schema and show its DDL."""

from __future__ import annotations

import click
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import OperationalError

from codecshift.cli.context import CliError, engine, safe_url, settings
from codecshift.db import init_schema, schema_ddl, session_scope
from codecshift.initsql import render_init_sql
from codecshift.models import WorkerSetting
from codecshift.version import read_version


@click.group()
def db() -> None:
    """Create the database schema or print it."""


@db.command("init")
def db_init() -> None:
    """Create every table and default setting (safe to run again)."""
    url = settings().effective_database_url
    try:
        inserted = init_schema(engine())
        tables = inspect(engine()).get_table_names()
        with session_scope(engine()) as session:
            count = session.scalar(select(func.count()).select_from(WorkerSetting))
    except OperationalError as exc:
        raise CliError(f"cannot reach the database at {safe_url(url)}: {exc.orig}") from None
    click.echo(f"CodecShift {read_version()}: database {safe_url(url)} ready "
               f"({len(tables)} tables, {count} settings, {len(inserted)} defaults added)")


@db.command("sql")
@click.option("--dialect", type=click.Choice(["postgresql", "sqlite"]), default="postgresql",
              show_default=True, help="SQL dialect of the DDL.")
@click.option("--init", "full", is_flag=True, help="Print the whole init.sql: role, DDL, grants, "
              "default settings (PostgreSQL only).")
def db_sql(dialect: str, full: bool) -> None:
    """Print the DDL generated from the models."""
    if full:
        if dialect != "postgresql":
            raise click.UsageError("--init is for PostgreSQL only")
        click.echo(render_init_sql(), nl=False)
    else:
        click.echo(schema_ddl(dialect), nl=False)
