"""`codecshift up`: the whole cluster on one machine (embedded mode).

SQLite and Kombu's filesystem transport under one data folder; the dashboard,
beat, the control worker and one transcode worker as child processes; a sample
library generated with ffmpeg when none is given. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from sqlalchemy import select

from codecshift import sample_library
from codecshift.apikeys import create_key
from codecshift.cli.context import CliError, engine, settings
from codecshift.db import init_schema, session_scope
from codecshift.models import ApiKey, Library
from codecshift.services.scanner import start_scan
from codecshift.version import read_version

EMBEDDED_NODE_KEY = "embedded node"
PROCESSES = ("web", "control", "beat", "worker")


def _ensure_library(path: Path, *, sample: bool) -> int:
    with session_scope(engine()) as session:
        root = str(path)
        for library in session.scalars(select(Library)):
            if root in (library.roots or []):
                return library.id
        name = "Sample library" if sample else path.name or root
        taken = {lib.name for lib in session.scalars(select(Library))}
        while name in taken:
            name += " (2)"
        library = Library(name=name, kind="folder", roots=[root],
                          profile=dict(sample_library.SAMPLE_PROFILE) if sample else {})
        session.add(library)
        session.flush()
        return library.id


def _node_key() -> str:
    """A fresh node key for the embedded worker; the previous one is revoked."""
    from codecshift.models import utcnow

    with session_scope(engine()) as session:
        for old in session.scalars(select(ApiKey).where(ApiKey.name == EMBEDDED_NODE_KEY,
                                                        ApiKey.revoked_at.is_(None))):
            old.revoked_at = utcnow()
        return create_key(session, EMBEDDED_NODE_KEY, "node").secret


def _spawn(name: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "codecshift.cli.main", name]
    if name == "web":
        args += ["--workers", "2"]
    log_file = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
    return subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)


@click.command()
@click.option("--library", "library_path", type=click.Path(file_okay=False, path_type=Path),
              help="A folder of media to convert (default: a generated sample library).")
@click.option("--port", type=int, default=None, help="Dashboard port (default CODECSHIFT_WEB_PORT).")
def up(library_path: Path | None, port: int | None) -> None:
    """Run the dashboard, beat, the control worker and a transcode worker on this machine."""
    config = settings()
    if library_path is not None and not library_path.expanduser().is_dir():
        raise CliError(f"--library {library_path} is not a folder")
    data = config.data_path
    data.mkdir(parents=True, exist_ok=True)
    sample = library_path is None
    if sample:
        library_path = data / "sample-library"
        click.echo(f"Generating a sample library in {library_path} ...")
        try:
            sample_library.generate(library_path)
        except sample_library.SampleError as exc:
            raise CliError(str(exc)) from None
    library_path = library_path.expanduser().resolve()
    init_schema(engine())
    library_id = _ensure_library(library_path, sample=sample)
    web_port = port or config.web_port
    env = {**os.environ, "CODECSHIFT_DATA_DIR": str(data), "CODECSHIFT_WEB_PORT": str(web_port),
           "CODECSHIFT_DASHBOARD_URL": f"http://127.0.0.1:{web_port}", "CODECSHIFT_API_KEY": _node_key(),
           "CODECSHIFT_NODE_NAME": config.node_name or "embedded"}
    config.effective_secret_key()
    log_dir = data / "logs"
    log_dir.mkdir(exist_ok=True)
    children = {name: _spawn(name, env, log_dir) for name in PROCESSES}
    from tasks import names
    from tasks.app import create_celery
    from tasks.publisher import CeleryPublisher

    with session_scope(engine()) as session:
        run, created = start_scan(session, library_id)
    if created:
        CeleryPublisher(create_celery(config)).enqueue(names.SCAN_LIBRARY, [run.id])
    host = "127.0.0.1" if config.web_host in ("0.0.0.0", "::") else config.web_host
    click.echo(f"CodecShift {read_version()} is running in embedded mode (data in {data}).")
    click.echo(f"  Dashboard: http://{host}:{web_port}/")
    if config.auth_enabled:
        click.echo(f"  First visit: create the admin account at http://{host}:{web_port}/setup "
                   "(or `codecshift user create NAME --admin`).")
    click.echo(f"  Library:   {library_path} (scan started)")
    click.echo(f"  Logs:      {log_dir}/")
    click.echo("Press Ctrl-C to stop.")
    stopping: list[int] = []
    # Installed explicitly: a shell may start us with SIGINT ignored (a background job).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: stopping.append(number))
    while not stopping:
        dead = [name for name, child in children.items() if child.poll() is not None]
        if dead:
            _stop(children)
            raise CliError(f"the {dead[0]} process stopped (exit {children[dead[0]].returncode}); "
                           f"see {log_dir / (dead[0] + '.log')}")
        time.sleep(0.5)
    click.echo("Stopping ...")
    _stop(children)
