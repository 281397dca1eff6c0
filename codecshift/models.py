"""SQLAlchemy 2.x typed models: the source of truth for the schema.

``init.sql`` is generated from these (``codecshift db sql --init``) and a test
applies it to a fresh PostgreSQL database and compares the result with them.
Indexes are chosen for libraries of 100k files and a million history rows:
every list the dashboard pages through and every query the dispatcher and the
scanner run has one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Job states (DESIGN.md §4).
QUEUED = "queued"
RUNNING = "running"
VERIFYING = "verifying"
REPLACING = "replacing"
DONE = "done"
FAILED = "failed"
SKIPPED = "skipped"
CANCELLED = "cancelled"
AWAITING_APPROVAL = "awaiting_approval"
JOB_STATUSES = (QUEUED, RUNNING, VERIFYING, REPLACING, DONE, FAILED, SKIPPED, CANCELLED, AWAITING_APPROVAL)
ACTIVE_STATUSES = (RUNNING, VERIFYING, REPLACING)
LIVE_STATUSES = (QUEUED, *ACTIVE_STATUSES, AWAITING_APPROVAL)
FINAL_STATUSES = (DONE, FAILED, SKIPPED, CANCELLED)

JOB_KINDS = ("transcode", "healthcheck")
SCAN_LIVE_STATUSES = ("queued", "running")

_LIVE_SQL = "status IN ('queued', 'running', 'verifying', 'replacing', 'awaiting_approval')"
_SCAN_LIVE_SQL = "status IN ('queued', 'running')"
_PENDING_ROLLUP_SQL = "NOT in_rollup"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Library(Base):
    """A root folder or a Plex section, with its profile and path mappings."""

    __tablename__ = "libraries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="folder")  # folder | plex
    roots: Mapped[list[Any]] = mapped_column(default=list)
    plex_section_key: Mapped[str | None] = mapped_column(String(64))
    plex_section_type: Mapped[str | None] = mapped_column(String(16))
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    path_mappings: Mapped[list[Any]] = mapped_column(default=list)
    rescan_interval_minutes: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_scan_at: Mapped[datetime | None] = mapped_column()


class MediaFile(Base):
    """One row per file seen in a library, with its fingerprint and probe summary."""

    __tablename__ = "media_files"
    __table_args__ = (
        UniqueConstraint("library_id", "path", name="uq_media_files_library_path"),
        Index("ix_media_files_library_state", "library_id", "state"),
        Index("ix_media_files_health", "library_id", "health"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int] = mapped_column(BigInteger, default=0)
    # new | probed | queued | done | skipped | failed | error | gone | awaiting_approval
    state: Mapped[str] = mapped_column(String(24), default="new")
    container: Mapped[str | None] = mapped_column(String(64))
    video_codec: Mapped[str | None] = mapped_column(String(32))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    bit_depth: Mapped[int | None] = mapped_column(Integer)
    hdr: Mapped[str | None] = mapped_column(String(16))
    duration: Mapped[float | None] = mapped_column(Float)
    bitrate: Mapped[int | None] = mapped_column(BigInteger)
    audio_streams: Mapped[int | None] = mapped_column(Integer)
    subtitle_streams: Mapped[int | None] = mapped_column(Integer)
    probe_error: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(Text)
    health: Mapped[str | None] = mapped_column(String(16))  # ok | corrupt
    health_message: Mapped[str | None] = mapped_column(Text)
    health_checked_at: Mapped[datetime | None] = mapped_column()
    plex_rating_key: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Job(Base):
    """One piece of work. The database is the queue of record (DESIGN.md §5)."""

    __tablename__ = "jobs"
    __table_args__ = (
        # published_at too: the status page counts jobs per status and queue from this index alone.
        Index("ix_jobs_status_queue", "status", "queue", "published_at"),
        Index("ix_jobs_priority_id", "priority", "id"),  # the jobs page's order when no status is chosen
        Index("ix_jobs_dispatch", "status", "priority", "id"),
        Index("ix_jobs_library_status", "library_id", "status"),
        Index("ix_jobs_node_status", "node", "status"),
        Index("ix_jobs_updated_at", "updated_at"),
        Index("ix_jobs_status_finished", "status", "finished_at"),
        Index("uq_jobs_live_per_file", "media_file_id", "kind", unique=True,
              sqlite_where=text(_LIVE_SQL), postgresql_where=text(_LIVE_SQL)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="transcode")
    library_id: Mapped[int | None] = mapped_column(ForeignKey("libraries.id", ondelete="SET NULL"))
    media_file_id: Mapped[int | None] = mapped_column(ForeignKey("media_files.id", ondelete="SET NULL"))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), default=QUEUED)
    reason: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[str | None] = mapped_column(String(16))
    encoder: Mapped[str | None] = mapped_column(String(32))
    target_codec: Mapped[str] = mapped_column(String(8), default="hevc")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    cpu_fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    published_at: Mapped[datetime | None] = mapped_column()
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    fps: Mapped[float | None] = mapped_column(Float)
    speed: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    stage: Mapped[str | None] = mapped_column(String(24))
    node: Mapped[str | None] = mapped_column(String(200))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    source_size: Mapped[int | None] = mapped_column(BigInteger)
    source_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    output_size: Mapped[int | None] = mapped_column(BigInteger)
    temp_path: Mapped[str | None] = mapped_column(Text)
    journal: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class JobEvent(Base):
    """What happened on each try of a job, with the log tail."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job", "job_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(32))
    node: Mapped[str | None] = mapped_column(String(200))
    encoder: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class History(Base):
    """A finished transcode; space saved is computed from here."""

    __tablename__ = "history"
    __table_args__ = (
        Index("ix_history_finished_at", "finished_at"),
        Index("ix_history_node", "node", "finished_at"),
        Index("ix_history_encoder", "encoder", "finished_at"),
        Index("ix_history_library", "library_id", "finished_at"),
        Index("ix_history_pending_rollup", "id", sqlite_where=text(_PENDING_ROLLUP_SQL),
              postgresql_where=text(_PENDING_ROLLUP_SQL)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    library_id: Mapped[int | None] = mapped_column(ForeignKey("libraries.id", ondelete="SET NULL"))
    path: Mapped[str] = mapped_column(Text)
    source_codec: Mapped[str | None] = mapped_column(String(32))
    target_codec: Mapped[str] = mapped_column(String(8))
    size_before: Mapped[int] = mapped_column(BigInteger)
    size_after: Mapped[int] = mapped_column(BigInteger)
    quality_metric: Mapped[str | None] = mapped_column(String(8))
    quality_score: Mapped[float | None] = mapped_column(Float)
    node: Mapped[str | None] = mapped_column(String(200))
    encoder: Mapped[str | None] = mapped_column(String(32))
    encode_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    total_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Counted in history_daily yet? The stats read the daily totals plus the few rows not yet in them.
    in_rollup: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class HistoryDaily(Base):
    """Daily totals of history per dimension, so the stats never read a million rows.

    ``dimension`` is all, node, encoder, source_codec or library; ``key`` the node
    name, encoder, codec or library id ("" for all and for unknown values). Days are
    UTC. Totals stay when retention prunes history rows: space saved is all-time.
    """

    __tablename__ = "history_daily"

    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    files: Mapped[int] = mapped_column(Integer, default=0)
    size_before: Mapped[int] = mapped_column(BigInteger, default=0)
    size_after: Mapped[int] = mapped_column(BigInteger, default=0)
    encode_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    total_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    ssim_sum: Mapped[float] = mapped_column(Float, default=0.0)
    ssim_count: Mapped[int] = mapped_column(Integer, default=0)
    vmaf_sum: Mapped[float] = mapped_column(Float, default=0.0)
    vmaf_count: Mapped[int] = mapped_column(Integer, default=0)


class Node(Base):
    """A transcode worker as it registered and last reported."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    hostname: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(32))
    capabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    queues: Mapped[list[Any]] = mapped_column(default=list)
    concurrency: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # online | paused | draining | offline | stopped
    status: Mapped[str] = mapped_column(String(16), default="online")
    desired_state: Mapped[str] = mapped_column(String(16), default="running")  # running | paused | drain
    current_jobs: Mapped[list[Any]] = mapped_column(default=list)
    path_mappings: Mapped[list[Any]] = mapped_column(default=list)
    # The node key that registered this node; only it (or an admin) may act as the node.
    owner_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat: Mapped[datetime | None] = mapped_column()


class WorkerSetting(Base):
    """A behaviour setting's current value, JSON-encoded; see codecshift.registry."""

    __tablename__ = "worker_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    session_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()


class ApiKey(Base):
    """An API key, stored as a hash; the prefix finds the row without scanning."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16), default="node")  # node | metrics | webhook | admin
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class RateLimitCounter(Base):
    """A fixed-window counter of the sign-in rate limit when there is no Redis (embedded
    mode): every web worker process counts in the same row."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(Float)  # epoch seconds


class ScanRun(Base):
    """One scan of a library; the partial unique index is the one-scan-at-a-time lock."""

    __tablename__ = "scan_runs"
    __table_args__ = (
        Index("uq_scan_runs_live_per_library", "library_id", unique=True,
              sqlite_where=text(_SCAN_LIVE_SQL), postgresql_where=text(_SCAN_LIVE_SQL)),
        Index("ix_scan_runs_library", "library_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="scan")  # scan | healthcheck
    status: Mapped[str] = mapped_column(String(16), default="queued")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    files_seen: Mapped[int] = mapped_column(Integer, default=0)
    files_new: Mapped[int] = mapped_column(Integer, default=0)
    files_changed: Mapped[int] = mapped_column(Integer, default=0)
    files_gone: Mapped[int] = mapped_column(Integer, default=0)
    files_probed: Mapped[int] = mapped_column(Integer, default=0)
    jobs_created: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # Last sign of life of the worker running it (beat fails a run that went quiet).
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BulkOperation(Base):
    """An action on every job matching a filter, run by the control worker (202 + this id)."""

    __tablename__ = "bulk_operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    filter: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    total: Mapped[int | None] = mapped_column(Integer)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # Last sign of life of the worker running it (beat fails a run that went quiet).
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
