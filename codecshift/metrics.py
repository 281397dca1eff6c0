"""Prometheus metrics read from the database on each scrape.

The database is the queue of record (DESIGN.md §5), so the numbers an operator
wants — jobs by status, queue depth, encode speed, space saved, nodes — are a
handful of aggregate queries over indexed columns, run when Prometheus asks.
Nothing is kept in process memory, so every gunicorn worker answers the same.
A database that cannot be reached gives ``codecshift_database_up 0`` and a
valid page rather than an error, so the outage itself can be alerted on.

The dashboard's ``/metrics`` route serves ``render_metrics(engine, accept)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from codecshift import registry
from codecshift.models import JOB_STATUSES, QUEUED, RUNNING, Job, Node, WorkerSetting
from codecshift.services import history_stats
from codecshift.version import read_version

log = logging.getLogger(__name__)

# Transcode queues always get a series, so dashboards and alerts see a 0, not a gap.
TRANSCODE_QUEUES: tuple[str, ...] = registry.FAMILIES
NO_QUEUE = "none"  # jobs not routed to a queue yet
UNKNOWN = "unknown"
NODE_STATUSES = ("online", "paused", "draining", "offline", "stopped")
_REPORTING_STATUSES = ("online", "paused", "draining")  # a node in these is up
STATEMENT_TIMEOUT_MS = 5000


def effective_node_status(status: str, last_heartbeat: datetime | None, now: datetime,
                          offline_after_seconds: int) -> str:
    """The status the dashboard shows (``/api/status``): the stored one while the node's
    heartbeat is fresh, offline once it is older than the threshold or missing, even
    before the reaper has written that down."""
    fresh = last_heartbeat is not None and now - last_heartbeat <= timedelta(seconds=offline_after_seconds)
    return status if fresh else "offline"


class ClusterCollector:
    """A prometheus_client collector that queries the database on every ``collect``."""

    def __init__(self, engine: Engine, *, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily("codecshift_build", "The CodecShift version serving these metrics.",
                               value={"version": read_version()})
        started = time.perf_counter()
        try:
            families = self._query()
        except SQLAlchemyError as exc:
            log.warning("metrics: database query failed: %s", exc.__class__.__name__)
            families = []
            up = 0.0
        else:
            up = 1.0
        yield GaugeMetricFamily("codecshift_database_up", "1 if the last scrape could read the "
                                "database, 0 if it could not.", value=up)
        yield from families
        yield GaugeMetricFamily("codecshift_scrape_duration_seconds", "Time spent querying the "
                                "database for this scrape.", value=time.perf_counter() - started)

    # -- queries --------------------------------------------------------------

    def _query(self) -> list[Metric]:
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # One snapshot for every query, so a history fold running meanwhile is counted once.
                conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            return self._query_in(conn)

    def _query_in(self, conn: Connection) -> list[Metric]:
        with conn.begin():
            if conn.dialect.name == "postgresql":
                # A scrape must never hang behind a lock or a slow plan.
                conn.execute(text(f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}"))
            return [*self._jobs(conn), *self._history(conn), *self._encoding(conn), *self._nodes(conn)]

    def _jobs(self, conn: Connection) -> list[Metric]:
        rows = conn.execute(select(Job.status, Job.queue, func.count()).group_by(Job.status, Job.queue)).all()
        counts: dict[tuple[str, str], int] = {}
        for status, queue, count in rows:
            key = (status, queue or NO_QUEUE)
            counts[key] = counts.get(key, 0) + count
        queues = sorted({*TRANSCODE_QUEUES, NO_QUEUE, *(queue for _, queue in counts)})
        statuses = [*JOB_STATUSES, *sorted({s for s, _ in counts} - set(JOB_STATUSES))]
        jobs = GaugeMetricFamily("codecshift_jobs", "Jobs by status and queue (the queue is 'none' "
                                 "until the dispatcher routes a job).", labels=["status", "queue"])
        for status in statuses:
            for queue in queues:
                jobs.add_metric([status, queue], counts.get((status, queue), 0))
        depth = GaugeMetricFamily("codecshift_queue_depth", "Queued jobs waiting per queue.",
                                  labels=["queue"])
        for queue in queues:
            depth.add_metric([queue], counts.get((QUEUED, queue), 0))
        return [jobs, depth]

    def _history(self, conn: Connection) -> list[Metric]:
        # The daily rollup plus the rows not folded in yet (history_stats), never a scan of every
        # history row; so the figures are all-time and do not fall when retention prunes rows.
        totals = history_stats.all_time_totals(conn)
        return [
            GaugeMetricFamily("codecshift_bytes_saved", "Bytes saved by every finished transcode "
                              "(all time: pruning the history does not lower it).",
                              value=totals.size_before - totals.size_after),
            GaugeMetricFamily("codecshift_bytes_processed", "Source bytes of every finished transcode "
                              "(all time).", value=totals.size_before),
            GaugeMetricFamily("codecshift_transcodes_finished", "Finished transcodes (all time).",
                              value=totals.files),
        ]

    def _encoding(self, conn: Connection) -> list[Metric]:
        rows = conn.execute(
            select(Job.node, Job.encoder, func.count(), func.coalesce(func.sum(Job.fps), 0.0))
            .where(Job.status == RUNNING).group_by(Job.node, Job.encoder)).all()
        fps = GaugeMetricFamily("codecshift_encode_fps", "Frames per second being encoded now, summed "
                                "over the running jobs of each node and encoder.", labels=["node", "encoder"])
        running = GaugeMetricFamily("codecshift_encoding_jobs", "Jobs encoding now per node and encoder.",
                                    labels=["node", "encoder"])
        merged: dict[tuple[str, str], tuple[int, float]] = {}
        for node, encoder, count, total in rows:
            key = (node or UNKNOWN, encoder or UNKNOWN)
            old = merged.get(key, (0, 0.0))
            merged[key] = (old[0] + count, old[1] + float(total))
        for key, (count, total) in sorted(merged.items()):
            running.add_metric(list(key), count)
            fps.add_metric(list(key), round(total, 3))
        return [fps, running]

    def _nodes(self, conn: Connection) -> list[Metric]:
        key = "node_offline_after_seconds"
        stored = conn.scalar(select(WorkerSetting.value).where(WorkerSetting.key == key))
        offline_after = (registry.decode(key, stored) if stored is not None
                         else registry.get_setting(key).default)
        now = datetime.now(UTC)
        rows = conn.execute(select(Node.name, Node.status, Node.last_heartbeat)).all()
        by_status = dict.fromkeys(NODE_STATUSES, 0)
        up = GaugeMetricFamily("codecshift_node_up", "1 while a node reports (online, paused or "
                               "draining), 0 when it is offline or stopped.", labels=["node"])
        heartbeat = GaugeMetricFamily("codecshift_node_last_heartbeat_timestamp_seconds", "When each "
                                      "node last reported, as a Unix time.", labels=["node"])
        for name, status, last in rows:
            last = _aware(last)
            shown = effective_node_status(status, last, now, offline_after)
            by_status[shown] = by_status.get(shown, 0) + 1
            up.add_metric([name], 1 if shown in _REPORTING_STATUSES else 0)
            if last is not None:
                heartbeat.add_metric([name], last.timestamp())
        nodes = GaugeMetricFamily("codecshift_nodes", "Nodes by status as the dashboard shows it.",
                                  labels=["status"])
        for status, count in by_status.items():
            nodes.add_metric([status], count)
        return [nodes, up, heartbeat]


def _aware(value: datetime | None) -> datetime | None:
    """The models' UTC type already gives aware values; a naive one is taken as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def render_metrics(engine: Engine, accept: str | None = None) -> tuple[bytes, str]:
    """The exposition page and its content type, negotiated from the request's Accept header
    (Prometheus text by default, OpenMetrics when asked for)."""
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(ClusterCollector(engine))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(collectors), content_type
