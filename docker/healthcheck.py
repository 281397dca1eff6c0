#!/usr/bin/env python3
"""Container healthchecks for the CodecShift images; exit 0 healthy, 1 not.

    healthcheck.py http [URL]   the dashboard or Flower answers HTTP without a server
                                error (a redirect to the sign-in page is healthy);
                                URL defaults to this container's dashboard port
    healthcheck.py celery       this container's Celery worker answers a ping
                                through the broker (control worker, transcode nodes)
    healthcheck.py broker       the broker accepts a connection (beat)

    --timeout SECONDS (anywhere; default 5) bounds each network wait.

Settings come from the same CODECSHIFT_* variables as the process being checked,
parsed by codecshift.config, so the check and the service agree on the broker.
One line on stdout says why; `docker inspect` shows it.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request

TIMEOUT = 5.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def check_http(url: str | None, timeout: float = TIMEOUT) -> tuple[bool, str]:
    if url is None:
        from codecshift.config import load_settings

        url = f"http://127.0.0.1:{load_settings().web_port}/"
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: no answer ({reason})"
    if status >= 500:
        return False, f"{url}: server error {status}"
    return True, f"{url}: HTTP {status}"


def _names() -> set[str]:
    from codecshift.config import load_settings

    names = {socket.gethostname()}
    if load_settings().node_name:
        names.add(load_settings().node_name)
    return names


def check_celery(timeout: float = TIMEOUT) -> tuple[bool, str]:
    """Ping this container's worker by its Celery name: ``codecshift@NODE`` for a transcode
    node (tasks.publisher.worker_hostname), ``control@HOST`` for the control worker. If
    neither answers, a short broadcast still accepts any worker named *@this-host, so a
    renamed worker does not read as dead."""
    from celery import Celery

    from codecshift.config import load_settings
    from tasks.publisher import worker_hostname

    settings = load_settings()
    wanted = _names()
    targets = sorted({worker_hostname(name) for name in wanted} | {f"control@{name}" for name in wanted})
    app = Celery("codecshift-healthcheck", broker=settings.effective_broker_url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False
    app.conf.broker_connection_timeout = timeout
    try:
        replies = app.control.ping(destination=targets, timeout=timeout, limit=1)
        if not replies:
            replies = app.control.ping(timeout=min(2.0, timeout))
    except Exception as exc:
        return False, f"broker unreachable: {type(exc).__name__}: {exc}"
    finally:
        app.close()
    answered = [name for reply in replies for name in reply]
    mine = [name for name in answered if name.partition("@")[2] in wanted]
    if mine:
        return True, f"{', '.join(mine)} answered"
    return False, f"none of {', '.join(targets)} answered within {timeout:g} s (heard: {answered or 'none'})"


def check_broker(timeout: float = TIMEOUT) -> tuple[bool, str]:
    from kombu import Connection

    from codecshift.config import load_settings

    url = load_settings().effective_broker_url
    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return False, f"broker unreachable: {type(exc).__name__}: {exc}"
    return True, "broker reachable"


def main(argv: list[str]) -> int:
    timeout = TIMEOUT
    if "--timeout" in argv:
        at = argv.index("--timeout")
        timeout = float(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    if not argv or argv[0] not in ("http", "celery", "broker"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        if argv[0] == "http":
            ok, message = check_http(argv[1] if len(argv) > 1 else None, timeout)
        elif argv[0] == "celery":
            ok, message = check_celery(timeout)
        else:
            ok, message = check_broker(timeout)
    except Exception as exc:  # a configuration error is unhealthy, with its reason
        ok, message = False, f"{type(exc).__name__}: {exc}"
    print(("healthy: " if ok else "unhealthy: ") + message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
