"""Request bodies and queries of the API, validated with pydantic (errors name the field)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from codecshift.models import JOB_STATUSES


class Strict(BaseModel):
    """User-facing bodies: an unknown field is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Lenient(BaseModel):
    """Node-facing bodies: a newer node may send fields an older dashboard ignores."""

    model_config = ConfigDict(extra="ignore")


class Page(Strict):
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(50, ge=1, le=500)


# -- nodes ---------------------------------------------------------------------

NodeName = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class CurrentJob(Lenient):
    job_id: StrictInt
    attempt: StrictInt


class NodeRegistration(Lenient):
    name: str = NodeName
    hostname: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=32)
    capabilities: dict[str, Any] = Field(default_factory=dict)
    queues: list[Literal["nvenc", "qsv", "vaapi", "cpu"]]
    concurrency: dict[str, StrictInt] = Field(default_factory=dict)
    path_mappings: list[dict[str, Any]] = Field(default_factory=list)
    current_jobs: list[CurrentJob] = Field(default_factory=list, description="What the node still runs: "
                                           "a re-registering node keeps these")


class Heartbeat(Lenient):
    status: str = Field("online", max_length=16)
    current_jobs: list[CurrentJob] = Field(default_factory=list)


class NodeAction(Strict):
    action: Literal["pause", "resume", "drain", "quit"]


# -- a node's job calls --------------------------------------------------------


class JobCall(Lenient):
    node: str = NodeName
    attempt: StrictInt = Field(ge=0)


class Progress(JobCall):
    stage: str | None = Field(None, max_length=24)
    progress: float | None = Field(None, ge=0, le=100)
    fps: float | None = Field(None, ge=0)
    speed: float | None = Field(None, ge=0)
    eta_seconds: float | None = Field(None, ge=0)


class Journal(JobCall):
    journal: dict[str, Any]


class Result(JobCall):
    status: Literal["done", "skipped", "failed", "cancelled"]
    code: str | None = Field(None, max_length=32, description="The media engine's reason code, e.g. "
                             "not_smaller, disk_full, recovery_failed")
    reason: str = Field("", max_length=20_000)
    encoder: str | None = Field(None, max_length=32)
    family: str | None = Field(None, max_length=16)
    stage: str | None = Field(None, max_length=24)
    source_codec: str | None = Field(None, max_length=32)
    source_size: int | None = Field(None, ge=0)
    output_size: int | None = Field(None, ge=0)
    output_path: str | None = None
    output_mtime_ns: int | None = None
    output_inode: int | None = None
    quality_metric: str | None = Field(None, max_length=8)
    quality_score: float | None = None
    encode_seconds: float = Field(0.0, ge=0)
    total_seconds: float = Field(0.0, ge=0)
    log_tail: str | None = None
    health: Literal["ok", "corrupt"] | None = None


class Recovered(JobCall):
    action: Literal["rolled_forward", "rolled_back", "conflict", "nothing_to_do"]
    message: str = Field("", max_length=4000)


# -- jobs, for people ----------------------------------------------------------


class JobFilter(Strict):
    status: Literal[JOB_STATUSES] | None = None  # type: ignore[valid-type]
    library_id: int | None = Field(None, ge=1)
    queue: str | None = Field(None, max_length=16)
    node: str | None = Field(None, max_length=200)
    kind: Literal["transcode", "healthcheck"] | None = None
    q: str | None = Field(None, max_length=500, description="Substring of the path")
    path: str | None = Field(None, max_length=4096, description="A file or folder inside a library: "
                             "jobs of that file or under that folder")


class JobQuery(JobFilter, Page):
    """The job filter, paged."""


class BulkJobs(Strict):
    action: Literal["requeue", "cancel", "delete", "approve", "move_to_top"]
    ids: list[StrictInt] | None = Field(None, min_length=1, max_length=10_000,
                                        description="Act on these jobs now (200)")
    filter: JobFilter | None = Field(None, description="Act on every job matching this filter, on the "
                                     "control worker (202 with an operation id)")


class PriorityBody(Strict):
    priority: StrictInt = Field(ge=-1_000_000, le=1_000_000)


# -- libraries -----------------------------------------------------------------


class PathMapping(Strict):
    """The shape of one mapping; its paths are checked by ``codecshift.pathmap.validate_mappings``
    (absolute POSIX or Windows paths, no '..' or NUL, no two entries with the same ``from`` for
    the same node), the one check every place that accepts mappings uses."""

    from_: str = Field(alias="from", min_length=1, max_length=4096)
    to: str = Field(min_length=1, max_length=4096)
    node: str | None = Field(None, max_length=200)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LibraryBody(Strict):
    name: str = Field(min_length=1, max_length=200)
    roots: list[str] = Field(min_length=1, max_length=50)
    profile: dict[str, Any] = Field(default_factory=dict)
    path_mappings: list[PathMapping] = Field(default_factory=list)
    rescan_interval_minutes: int | None = Field(None, ge=0, le=525_600)
    enabled: StrictBool = True


class LibraryPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    roots: list[str] | None = Field(None, min_length=1, max_length=50)
    profile: dict[str, Any] | None = None
    path_mappings: list[PathMapping] | None = None
    rescan_interval_minutes: int | None = Field(None, ge=0, le=525_600)
    enabled: StrictBool | None = None


class FilesQuery(Page):
    state: str | None = Field(None, max_length=24)
    health: Literal["ok", "corrupt", "unchecked"] | None = None
    q: str | None = Field(None, max_length=500)
    path: str | None = Field(None, max_length=4096, description="A file or folder inside this library")


class SettingsBody(Strict):
    values: dict[str, Any] = Field(min_length=1)
