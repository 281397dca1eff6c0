"""`codecshift worker | control | beat | web | flower`: the cluster's processes.

Each is an ordinary Celery worker, Celery beat, gunicorn or Flower underneath,
so Celery's own CLI and Flower work against them.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time

import click

from codecshift.cli.context import CliError, safe_url, settings
from codecshift.version import read_version

log = logging.getLogger("codecshift")


def _logging() -> str:
    level = settings().log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return level


@click.command()
@click.option("--name", help="Node name (default: CODECSHIFT_NODE_NAME or the host name).")
@click.option("--register-timeout", type=float, default=0, help="Give up after this many seconds "
              "without reaching the dashboard (0 waits forever).")
def worker(name: str | None, register_timeout: float) -> None:
    """Start a transcode node: probe encoders, register, consume the queues it can serve."""
    from celery import signals

    from tasks import node_runtime
    from tasks.app import create_celery
    from tasks.node_client import DashboardError
    from tasks.node_jobs import recover_interrupted

    level = _logging()
    config = settings()
    if not config.api_key:
        raise CliError("CODECSHIFT_API_KEY is empty: create a node key on the dashboard machine with "
                       "`codecshift apikey create NAME --role node`")
    app = create_celery(config)
    runtime = node_runtime.NodeRuntime(config, app, name=name)
    works = [check.name for check in runtime.checks if check.works]
    log.info("CodecShift %s node %s: working encoders %s", read_version(), runtime.name, ", ".join(works) or "none")
    if not runtime.queues:
        raise CliError("no encoder works on this machine; see `codecshift node probe`")
    deadline = time.monotonic() + register_timeout if register_timeout else None
    while True:
        try:
            answer = runtime.register()
            break
        except DashboardError as exc:
            if exc.status in (401, 403) or (deadline and time.monotonic() > deadline):
                raise CliError(str(exc)) from None
            log.warning("%s; retrying in 5 s", exc)
            time.sleep(5)
    if answer.get("dashboard_version") not in (None, read_version()):
        log.warning("version mismatch: this node runs %s, the dashboard %s", read_version(),
                    answer["dashboard_version"])
    for job_id, action in recover_interrupted(runtime):
        log.info("recovered interrupted replacement of job %s: %s", job_id, action)
    node_runtime.install(runtime)

    @signals.worker_ready.connect(weak=False)
    def _ready(**_kwargs: object) -> None:
        runtime.consuming = True
        runtime.start_heartbeat()

    @signals.worker_shutting_down.connect(weak=False)
    def _stopping(**_kwargs: object) -> None:
        runtime.stopping = True  # keep reporting while the warm shutdown waits for running encodes

    @signals.worker_shutdown.connect(weak=False)
    def _stopped(**_kwargs: object) -> None:
        runtime.stop_heartbeat()

    log.info("serving queues %s with %s encode slots %s", ",".join(runtime.queues), runtime.total_concurrency,
             runtime.concurrency)
    app.worker_main(["worker", "-n", runtime.celery_hostname, "-Q", ",".join(runtime.queues),
                     "-c", str(runtime.total_concurrency), "-P", "threads", "-E", "--loglevel", level,
                     "--without-gossip", "--without-mingle"])


@click.command()
@click.option("--concurrency", "-c", type=int, default=3, show_default=True,
              help="Parallel control tasks (a long scan holds one; dispatch and maintenance use the others).")
@click.option("--name", default=None, help="Worker name (default control@HOST).")
def control(concurrency: int, name: str | None) -> None:
    """Start the control worker (queues scan, maintenance, control); it uses the database."""
    from celery import signals

    from codecshift.db import engine_for, init_schema, reset_after_fork
    from tasks.app import create_celery

    level = _logging()
    config = settings()
    init_schema(engine_for(config.effective_database_url))
    log.info("CodecShift %s control worker on %s", read_version(), safe_url(config.effective_database_url))
    signals.worker_process_init.connect(lambda **_: reset_after_fork(), weak=False)
    app = create_celery(config)
    app.worker_main(["worker", "-n", name or f"control@{socket.gethostname()}", "-Q", "scan,maintenance,control",
                     "-c", str(concurrency), "-E", "--loglevel", level, "--without-gossip", "--without-mingle"])


@click.command()
def beat() -> None:
    """Start the scheduler (run exactly one per cluster)."""
    from codecshift import settings_store
    from codecshift.db import engine_for, session_scope
    from tasks.app import create_celery

    level = _logging()
    config = settings()
    values = None
    try:
        with session_scope(engine_for(config.effective_database_url)) as session:
            values = settings_store.load_all(session)
    except Exception as exc:
        log.warning("beat uses default intervals: the database is not reachable (%s)", exc)
    app = create_celery(config, schedule_values=values)
    config.data_path.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "--loglevel", level, "-s", str(config.data_path / "celerybeat-schedule")])


@click.command()
@click.option("--bind", default=None, help="HOST:PORT (default CODECSHIFT_WEB_HOST:CODECSHIFT_WEB_PORT).")
@click.option("--workers", type=int, default=None, help="gunicorn processes (default CODECSHIFT_WEB_WORKERS).")
def web(bind: str | None, workers: int | None) -> None:
    """Start the dashboard under gunicorn."""
    from codecshift.db import engine_for, init_schema

    config = settings()
    init_schema(engine_for(config.effective_database_url))
    config.effective_secret_key()  # generated before the workers fork, so they share it
    address = bind or f"{config.web_host}:{config.web_port}"
    args = [sys.executable, "-m", "gunicorn", "web.wsgi:app", "--bind", address,
            "--workers", str(workers or config.web_workers), "--worker-class", "gthread", "--threads", "8",
            "--timeout", "60", "--graceful-timeout", "20", "--access-logfile", "-",
            "--forwarded-allow-ips", "*" if config.proxy_count else "127.0.0.1"]
    click.echo(f"CodecShift {read_version()} dashboard on http://{address}")
    os.execv(sys.executable, args)


@click.command()
@click.option("--port", type=int, default=None, help="Port (default CODECSHIFT_FLOWER_PORT).")
def flower(port: int | None) -> None:
    """Start Flower against the same broker (basic auth from CODECSHIFT_FLOWER_BASIC_AUTH)."""
    from tasks.app import create_celery

    config = settings()
    if config.auth_enabled and not config.flower_basic_auth:
        raise CliError("authentication is on: set CODECSHIFT_FLOWER_BASIC_AUTH=user:password for Flower")
    app = create_celery(config)
    args = ["flower", f"--port={port or config.flower_port}", "--address=" + config.web_host]
    if config.flower_basic_auth:
        args.append(f"--basic-auth={config.flower_basic_auth}")
    app.start(args)
