"""Entry point of the `codecshift` command."""

from __future__ import annotations

import sys

import click

from codecshift.cli.context import CliError
from codecshift.cli.db_commands import db
from codecshift.config import ConfigError
from codecshift.version import read_version


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(read_version(), "--version", "-V", prog_name="codecshift",
                      message="%(prog)s %(version)s")
def cli() -> None:
    """CodecShift: convert a media library to HEVC or AV1 on a cluster, never losing a file."""


cli.add_command(db)


def _register_optional_commands() -> None:
    """Command groups added by other parts of the package register here."""
    from codecshift.cli import registry_of_commands

    for command in registry_of_commands.load():
        cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; configuration problems end in one clear line and exit code 2."""
    _register_optional_commands()
    try:
        cli.main(args=argv, prog_name="codecshift", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ConfigError, CliError) as exc:
        click.echo(f"codecshift: {' '.join(str(exc).split())}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
