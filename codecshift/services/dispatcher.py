"""The dispatcher: the database is the queue of record; the broker holds only a few
messages per capability queue (DESIGN.md §5).

Each pass (after a job finishes, after a scan, and on a beat tick) it
1. counts the online encode slots per queue from the nodes' heartbeats,
2. republishes queued jobs whose message the broker lost (a restart),
3. tops every queue up to about ``dispatch_depth_factor`` x its slots, highest
   priority first, choosing the queue from the library's hardware preference
   and the capabilities of the nodes that are online.
A job is committed as published before its message is sent, and the claim is
conditional, so a duplicate message is harmless while a lost one is repaired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from codecshift import settings_store
from codecshift.models import QUEUED, Job, Library, Node, utcnow
from codecshift.services.publisher import FAMILY_ORDER, TRANSCODE_QUEUES, Publisher

# A message delivered but not yet claimed is missing from the broker for a moment;
# only a deficit older than this is treated as lost (a duplicate is harmless anyway).
REPUBLISH_GRACE = timedelta(seconds=10)
SCAN_LIMIT = 20_000
PAGE = 500
# A queue whose nodes all went away keeps its jobs this long before they are re-routed.
ORPHAN_GRACE = timedelta(minutes=5)


@dataclass
class Capacity:
    """Online encode slots per queue, and which (family, codec) pairs some node can do."""

    slots: Counter[str] = field(default_factory=Counter)
    codecs: dict[str, set[str]] = field(default_factory=dict)

    def can(self, family: str, codec: str) -> bool:
        return self.slots[family] > 0 and codec in self.codecs.get(family, set())


@dataclass
class DispatchReport:
    published: int = 0
    republished: int = 0
    released: int = 0
    paused: bool = False
    by_queue: Counter[str] = field(default_factory=Counter)


def node_is_fresh(node: Node, now: datetime, offline_after: int) -> bool:
    return node.last_heartbeat is not None and now - node.last_heartbeat <= timedelta(seconds=offline_after)


def online_capacity(session: Session, now: datetime, offline_after: int) -> Capacity:
    """Slots of nodes that are online, fresh and accepting work."""
    capacity = Capacity()
    for node in session.scalars(select(Node).where(Node.status.in_(("online", "draining", "paused")))):
        if node.desired_state != "running" or not node_is_fresh(node, now, offline_after):
            continue
        families = (node.capabilities or {}).get("families", {})
        for queue in node.queues or []:
            if queue not in TRANSCODE_QUEUES:
                continue
            capacity.slots[queue] += int((node.concurrency or {}).get(queue, 1))
            capacity.codecs.setdefault(queue, set()).update(families.get(queue, []))
    return capacity


def choose_queue(kind: str, codec: str, preference: str, cpu_fallback: bool, capacity: Capacity,
                 budget: Mapping[str, int]) -> str | None:
    """The queue for one job, or None when it must wait for a capable node."""
    if kind == "healthcheck":
        for queue in ("cpu", *FAMILY_ORDER):
            if capacity.slots[queue] > 0 and budget.get(queue, 0) > 0:
                return queue
        return None
    if cpu_fallback:
        return "cpu" if budget.get("cpu", 0) > 0 else None
    if preference != "auto":
        return preference if capacity.can(preference, codec) and budget.get(preference, 0) > 0 else None
    for family in FAMILY_ORDER:
        if capacity.can(family, codec) and budget.get(family, 0) > 0:
            return family
    return None


def _outstanding(session: Session) -> Counter[str]:
    rows = session.execute(select(Job.queue, func.count()).where(
        Job.status == QUEUED, Job.published_at.is_not(None)).group_by(Job.queue))
    return Counter({queue: count for queue, count in rows if queue})


def _library_preferences(session: Session, global_values: Mapping[str, Any]) -> dict[int | None, tuple[str, str]]:
    """(hardware preference, target codec) per library id; None is for jobs without a library."""
    prefs: dict[int | None, tuple[str, str]] = {
        None: (global_values["hardware_preference"], global_values["target_codec"])}
    for library in session.scalars(select(Library)):
        values = settings_store.effective_for_library(global_values, library)
        prefs[library.id] = (values["hardware_preference"], values["target_codec"])
    return prefs


def repair_lost_messages(session: Session, publisher: Publisher, now: datetime,
                         outstanding: Counter[str]) -> int:
    """Republish queued jobs whose messages are no longer in the broker."""
    messages: list[tuple[int, int, str, str]] = []
    for queue, expected in outstanding.items():
        missing = expected - publisher.queue_depth(queue)
        if missing <= 0:
            continue
        rows = session.execute(select(Job.id, Job.attempt, Job.kind).where(
            Job.status == QUEUED, Job.queue == queue, Job.published_at < now - REPUBLISH_GRACE)
            .order_by(Job.published_at, Job.id).limit(missing)).all()
        for job_id, attempt, kind in rows:
            session.execute(update(Job).where(Job.id == job_id, Job.status == QUEUED)
                            .values(published_at=now).execution_options(synchronize_session=False))
            messages.append((job_id, attempt, kind, queue))
    session.commit()
    if messages:
        publisher.publish_jobs(messages)
    return len(messages)


def dispatch(session: Session, publisher: Publisher, now: datetime | None = None) -> DispatchReport:
    """One dispatcher pass; safe to run concurrently (publishing is a conditional update)."""
    now = now or utcnow()
    report = DispatchReport()
    values = settings_store.load_all(session)
    if values["queue_paused"]:
        report.paused = True
        return report
    capacity = online_capacity(session, now, values["node_offline_after_seconds"])
    report.released = release_orphaned(session, now, capacity)
    outstanding = _outstanding(session)
    report.republished = repair_lost_messages(session, publisher, now, outstanding)
    budget = {queue: capacity.slots[queue] * values["dispatch_depth_factor"] - outstanding[queue]
              for queue in TRANSCODE_QUEUES}
    if not any(amount > 0 for amount in budget.values()):
        return report
    prefs = _library_preferences(session, values)
    messages = _select_and_mark(session, now, capacity, budget, prefs)
    session.commit()
    if messages:
        publisher.publish_jobs(messages)
    report.published = len(messages)
    report.by_queue.update(queue for _, _, _, queue in messages)
    return report


def _routable_filter(prefs: Mapping[int | None, tuple[str, str]], capacity: Capacity,
                     budget: Mapping[str, int]) -> Any:
    """Skip libraries whose preferred family has no room, so they cannot starve the others."""
    open_libraries = [lib for lib, (pref, codec) in prefs.items() if lib is not None and (
        pref == "auto" or (capacity.can(pref, codec) and budget.get(pref, 0) > 0))]
    return or_(Job.library_id.in_(open_libraries), Job.library_id.is_(None), Job.cpu_fallback.is_(True),
               Job.kind == "healthcheck")


def _select_and_mark(session: Session, now: datetime, capacity: Capacity, budget: dict[str, int],
                     prefs: Mapping[int | None, tuple[str, str]]) -> list[tuple[int, int, str, str]]:
    """Walk the unpublished queued jobs in priority order, page by page, until every queue's
    budget is spent (or SCAN_LIMIT rows were looked at): jobs no online node can take yet
    are passed over instead of blocking the ones behind them."""
    messages: list[tuple[int, int, str, str]] = []
    base = (select(Job.id, Job.attempt, Job.kind, Job.library_id, Job.target_codec, Job.cpu_fallback, Job.priority)
            .where(and_(Job.status == QUEUED, Job.published_at.is_(None), _routable_filter(prefs, capacity, budget)))
            .order_by(Job.priority.desc(), Job.id))
    after: tuple[int, int] | None = None
    looked = 0
    while looked < SCAN_LIMIT and any(amount > 0 for amount in budget.values()):
        stmt = base
        if after is not None:
            stmt = stmt.where(or_(Job.priority < after[0], and_(Job.priority == after[0], Job.id > after[1])))
        rows = session.execute(stmt.limit(PAGE)).all()
        if not rows:
            break
        looked += len(rows)
        after = (rows[-1].priority, rows[-1].id)
        for job_id, attempt, kind, library_id, codec, cpu_fallback, _priority in rows:
            preference = prefs.get(library_id, prefs[None])[0]
            queue = choose_queue(kind, codec, preference, cpu_fallback, capacity, budget)
            if queue is None:
                continue
            result = session.execute(
                update(Job).where(Job.id == job_id, Job.status == QUEUED, Job.published_at.is_(None))
                .values(published_at=now, queue=queue).execution_options(synchronize_session=False))
            if result.rowcount == 1:
                budget[queue] -= 1
                messages.append((job_id, attempt, kind, queue))
            if not any(amount > 0 for amount in budget.values()):
                break
    return messages


def release_orphaned(session: Session, now: datetime, capacity: Capacity) -> int:
    """Jobs published to a queue no online node serves any more go back to the dispatcher,
    which can route them elsewhere (their messages, if delivered later, find nothing)."""
    empty = [queue for queue in TRANSCODE_QUEUES if capacity.slots[queue] == 0]
    if not empty:
        return 0
    result = session.execute(update(Job).where(Job.status == QUEUED, Job.queue.in_(empty),
                                               Job.published_at < now - ORPHAN_GRACE)
                             .values(published_at=None).execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount


def pending_by_queue(session: Session) -> dict[str, int]:
    """Queued jobs per queue (unpublished ones under 'unassigned'), for status pages."""
    rows = session.execute(select(Job.queue, Job.published_at.is_(None), func.count())
                           .where(Job.status == QUEUED).group_by(Job.queue, Job.published_at.is_(None)))
    result: Counter[str] = Counter()
    for queue, unpublished, count in rows:
        result["unassigned" if unpublished or not queue else queue] += count
    return dict(result)
