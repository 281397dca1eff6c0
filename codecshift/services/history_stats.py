"""Space saved and the per-node, per-encoder, per-codec summaries, fast at a million rows.

History rows are folded into ``history_daily`` (one row per UTC day and
dimension value) and flagged ``in_rollup``; the stats read those daily totals
plus the few rows not folded in yet, inside one snapshot so a fold running at
the same moment is never counted twice or missed. ``refresh`` folds a bounded
batch and is cheap to call often (the dashboard calls it before reading);
``rebuild`` recomputes everything with set-based SQL (after an import, or to
repair). Retention prunes history rows but not the daily totals: space saved
is all-time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Date, Engine, case, cast, delete, func, insert, literal, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from codecshift.db import upsert_insert
from codecshift.models import History, HistoryDaily, Library

DIMENSIONS = ("all", "node", "encoder", "source_codec", "library")
SUMMARY_DIMENSIONS = ("node", "encoder", "source_codec", "library")
REFRESH_BATCH = 5000
_COUNTS = frozenset({"files", "size_before", "size_after", "ssim_count", "vmaf_count"})
PENDING = text("NOT history.in_rollup")  # the exact predicate of ix_history_pending_rollup
SUM_FIELDS = ("files", "size_before", "size_after", "encode_seconds", "total_seconds", "ssim_sum", "ssim_count",
         "vmaf_sum", "vmaf_count")


@dataclass
class Totals:
    """Summed figures of some history rows."""

    files: int = 0
    size_before: int = 0
    size_after: int = 0
    encode_seconds: float = 0.0
    total_seconds: float = 0.0
    ssim_sum: float = 0.0
    ssim_count: int = 0
    vmaf_sum: float = 0.0
    vmaf_count: int = 0

    def add(self, values: Sequence[Any]) -> None:
        """Add figures in ``SUM_FIELDS`` order (PostgreSQL sums of bigints arrive as Decimal)."""
        for name, value in zip(SUM_FIELDS, values, strict=True):
            kind = int if name in _COUNTS else float
            setattr(self, name, getattr(self, name) + kind(value or 0))

    def add_row(self, row: Any) -> None:
        self.add(_row_values(row))

    def merge(self, other: Totals) -> None:
        self.add(tuple(getattr(other, name) for name in SUM_FIELDS))

    def as_dict(self) -> dict[str, Any]:
        saved = self.size_before - self.size_after
        return {
            "files": self.files, "size_before": self.size_before, "size_after": self.size_after,
            "saved_bytes": saved,
            "saved_percent": round(100.0 * saved / self.size_before, 2) if self.size_before else 0.0,
            "encode_seconds": round(self.encode_seconds, 1), "total_seconds": round(self.total_seconds, 1),
            "ssim_avg": round(self.ssim_sum / self.ssim_count, 4) if self.ssim_count else None,
            "vmaf_avg": round(self.vmaf_sum / self.vmaf_count, 2) if self.vmaf_count else None,
        }


def _row_values(row: Any) -> tuple[Any, ...]:
    """The summable figures of one history row, in ``SUM_FIELDS`` order."""
    metric, score = row.quality_metric, row.quality_score
    ssim = score if metric == "ssim" and score is not None else None
    vmaf = score if metric == "vmaf" and score is not None else None
    return (1, row.size_before or 0, row.size_after or 0, row.encode_seconds or 0.0, row.total_seconds or 0.0,
            ssim or 0.0, int(ssim is not None), vmaf or 0.0, int(vmaf is not None))


def _keys(row: Any) -> Iterator[tuple[str, str]]:
    yield "all", ""
    yield "node", row.node or ""
    yield "encoder", row.encoder or ""
    yield "source_codec", row.source_codec or ""
    yield "library", str(row.library_id) if row.library_id is not None else ""


def utc_day(moment: datetime) -> date:
    """The UTC day of a timestamp (naive ones are UTC already)."""
    return moment.date() if moment.tzinfo is None else moment.astimezone(UTC).date()


_PENDING_COLUMNS = (History.id, History.finished_at, History.node, History.encoder, History.source_codec,
                    History.library_id, History.size_before, History.size_after, History.encode_seconds,
                    History.total_seconds, History.quality_metric, History.quality_score)


# -- folding rows into the daily totals -----------------------------------------------


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    stmt = upsert_insert(session.get_bind().dialect.name)(HistoryDaily)
    table = HistoryDaily.__table__
    stmt = stmt.on_conflict_do_update(
        index_elements=["dimension", "day", "key"],
        set_={name: table.c[name] + stmt.excluded[name] for name in SUM_FIELDS})
    for start in range(0, len(rows), 1000):
        session.execute(stmt, rows[start:start + 1000])


def refresh(session: Session, limit: int = REFRESH_BATCH) -> int:
    """Fold up to ``limit`` pending history rows into history_daily; returns how many.

    Concurrent callers take disjoint rows (SKIP LOCKED on PostgreSQL; SQLite
    serialises writers, and a caller that loses the race folds nothing)."""
    stmt = select(*_PENDING_COLUMNS).where(PENDING).order_by(History.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=History)
    try:
        rows = session.execute(stmt).all()
        if not rows:
            session.commit()
            return 0
        sums: dict[tuple[str, date, str], Totals] = defaultdict(Totals)
        for row in rows:
            day, values = utc_day(row.finished_at), _row_values(row)
            for dimension, key in _keys(row):
                sums[(dimension, day, key)].add(values)
        ids = [row.id for row in rows]
        changed = 0
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            changed += session.execute(update(History).where(History.id.in_(chunk), PENDING)
                                       .values(in_rollup=True)
                                       .execution_options(synchronize_session=False)).rowcount
        if changed != len(ids):  # another caller folded some of them first: fold nothing
            session.rollback()
            return 0
        _upsert(session, [{"dimension": d, "day": day, "key": k, **{n: getattr(t, n) for n in SUM_FIELDS}}
                          for (d, day, k), t in sums.items()])
        session.commit()
        return len(rows)
    except OperationalError:
        # SQLite: a writer that started from an older snapshot than another's fold.
        session.rollback()
        return 0


def _day_expression(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", History.finished_at), Date)
    return func.date(History.finished_at)


def rebuild(session: Session) -> int:
    """Recompute history_daily from every history row with set-based SQL; returns rows folded."""
    session.execute(delete(HistoryDaily))
    session.execute(update(History).values(in_rollup=True).execution_options(synchronize_session=False))
    day = _day_expression(session)
    sums = _row_sums()
    key_exprs = {
        "all": literal(""), "node": func.coalesce(History.node, ""), "encoder": func.coalesce(History.encoder, ""),
        "source_codec": func.coalesce(History.source_codec, ""),
        "library": func.coalesce(cast(History.library_id, HistoryDaily.key.type), ""),
    }
    for dimension, key in key_exprs.items():
        query = select(literal(dimension), day, key, *sums).group_by(day, *([key] if dimension != "all" else []))
        session.execute(insert(HistoryDaily).from_select(["dimension", "day", "key", *SUM_FIELDS], query))
    session.commit()
    return session.scalar(select(func.coalesce(func.sum(HistoryDaily.files), 0))
                          .where(HistoryDaily.dimension == "all")) or 0


def _when(condition: Any, value: Any) -> Any:
    return case((condition, value), else_=None)


# -- reading the stats --------------------------------------------------------------


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection whose reads all see one moment (REPEATABLE READ on
    PostgreSQL; a SQLite read transaction is a snapshot already)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def _summary_rows(conn: Connection, since: date | None, until: date | None) -> list[Any]:
    """Per dimension and key, the daily totals in range summed by the database (a few rows)."""
    stmt = (select(HistoryDaily.dimension, HistoryDaily.key,
                   *(func.sum(getattr(HistoryDaily, n)) for n in SUM_FIELDS))
            .where(HistoryDaily.dimension.in_(SUMMARY_DIMENSIONS))
            .group_by(HistoryDaily.dimension, HistoryDaily.key))
    if since is not None:
        stmt = stmt.where(HistoryDaily.day >= since)
    if until is not None:
        stmt = stmt.where(HistoryDaily.day <= until)
    return list(conn.execute(stmt))


def _pending_rows(conn: Connection) -> list[Any]:
    return list(conn.execute(select(*_PENDING_COLUMNS).where(PENDING)))


@dataclass
class Stats:
    """Everything the history page and the overview show, for one range of days."""

    since: date | None
    until: date | None
    totals: Totals = field(default_factory=Totals)
    all_time: Totals = field(default_factory=Totals)
    saved_before: int = 0
    by_day: dict[date, Totals] = field(default_factory=lambda: defaultdict(Totals))
    by: dict[str, dict[str, Totals]] = field(default_factory=lambda: {d: defaultdict(Totals)
                                                                       for d in SUMMARY_DIMENSIONS})


def _in_range(day: date, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def _row_sums() -> tuple[Any, ...]:
    """SQL sums of history rows in ``SUM_FIELDS`` order (the same figures ``_row_values`` gives)."""
    ssim = History.quality_metric == "ssim"
    vmaf = History.quality_metric == "vmaf"
    return (func.count(), func.coalesce(func.sum(History.size_before), 0),
            func.coalesce(func.sum(History.size_after), 0), func.coalesce(func.sum(History.encode_seconds), 0.0),
            func.coalesce(func.sum(History.total_seconds), 0.0),
            func.coalesce(func.sum(_when(ssim, History.quality_score)), 0.0),
            func.count(_when(ssim, History.quality_score)),
            func.coalesce(func.sum(_when(vmaf, History.quality_score)), 0.0),
            func.count(_when(vmaf, History.quality_score)))


def all_time_totals(conn: Connection) -> Totals:
    """Every transcode ever: the daily totals plus rows not folded in yet, both summed by the
    database (two index-backed aggregates, whatever the number of rows); callers that want one
    consistent view pass a ``snapshot`` connection."""
    totals = Totals()
    row = conn.execute(select(*(func.coalesce(func.sum(getattr(HistoryDaily, n)), 0) for n in SUM_FIELDS))
                       .where(HistoryDaily.dimension == "all")).one()
    totals.add(row)
    totals.add(conn.execute(select(*_row_sums()).where(PENDING)).one())
    return totals


def compute(conn: Connection, since: date | None, until: date | None) -> Stats:
    """Totals, per-day series and summaries for ``since``..``until`` (inclusive, UTC days)."""
    stats = Stats(since=since, until=until)
    for row in conn.execute(select(HistoryDaily.day, *(getattr(HistoryDaily, n) for n in SUM_FIELDS))
                            .where(HistoryDaily.dimension == "all")):
        values = tuple(row)[1:]
        stats.all_time.add(values)
        if _in_range(row.day, since, until):
            stats.by_day[row.day].add(values)
            stats.totals.add(values)
        elif since is not None and row.day < since:
            stats.saved_before += int(row.size_before) - int(row.size_after)
    for row in _summary_rows(conn, since, until):
        stats.by[row.dimension][row.key].add(tuple(row)[2:])
    for pending in _pending_rows(conn):
        day, values = utc_day(pending.finished_at), _row_values(pending)
        stats.all_time.add(values)
        if not _in_range(day, since, until):
            if since is not None and day < since:
                stats.saved_before += values[1] - values[2]
            continue
        stats.totals.add(values)
        stats.by_day[day].add(values)
        for dimension, key in _keys(pending):
            if dimension != "all":
                stats.by[dimension][key].add(values)
    return stats


def library_names(conn: Connection) -> dict[str, str]:
    return {str(ident): name for ident, name in conn.execute(select(Library.id, Library.name))}


# -- counting rows for paged lists ---------------------------------------------------------

_DIMENSION_COLUMNS = {"node": History.node, "encoder": History.encoder, "source_codec": History.source_codec,
                      "library": History.library_id}


def _start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def count_rows(session: Session, *, dimension: str | None = None, key: str | None = None,
               since: date | None = None, until: date | None = None) -> int:
    """How many history rows match one dimension (node, encoder, source_codec or library) and a
    range of UTC days, read from the daily totals instead of counting a million rows.

    History rows are only ever removed by retention, oldest first, so every day after the oldest
    remaining row is complete in history_daily; that first day and the rows not folded in yet
    are counted directly (both small, both on an index)."""
    oldest = session.scalar(select(func.min(History.finished_at)))
    if oldest is None:
        return 0
    first = utc_day(oldest)
    match: list[Any] = []
    if dimension is not None:
        column = _DIMENSION_COLUMNS[dimension]
        match.append(column == (int(key) if dimension == "library" else key))
    if since is not None:
        match.append(History.finished_at >= _start(since))
    if until is not None:
        match.append(History.finished_at < _start(until + timedelta(days=1)))
    total = session.scalar(select(func.count()).select_from(History).where(PENDING, *match)) or 0
    if (since is None or since <= first) and (until is None or until >= first):
        total += session.scalar(select(func.count()).select_from(History).where(
            History.in_rollup.is_(True), History.finished_at >= _start(first),
            History.finished_at < _start(first + timedelta(days=1)), *match)) or 0
    stmt = select(func.coalesce(func.sum(HistoryDaily.files), 0)).where(
        HistoryDaily.dimension == (dimension or "all"), HistoryDaily.key == (key if dimension else ""),
        HistoryDaily.day > first)
    if since is not None:
        stmt = stmt.where(HistoryDaily.day >= since)
    if until is not None:
        stmt = stmt.where(HistoryDaily.day <= until)
    return total + int(session.scalar(stmt) or 0)
