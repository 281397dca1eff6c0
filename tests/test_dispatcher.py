"""The dispatcher against real Redis: bounded queues, routing, lost messages, pause."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from codecshift import settings_store
from codecshift.config import load_settings
from codecshift.db import init_schema, make_engine, session_scope
from codecshift.models import QUEUED, Job, Library, Node, utcnow
from codecshift.services import dispatcher, job_actions
from support.services import redis_database, require_redis
from tasks.app import create_celery
from tasks.publisher import CeleryPublisher

REDIS_DB = 0


@pytest.fixture
def publisher() -> Iterator[CeleryPublisher]:
    global REDIS_DB
    with redis_database() as number:
        REDIS_DB = number
        app = create_celery(load_settings({"CODECSHIFT_BROKER_URL": f"redis://127.0.0.1:6379/{number}"}))
        yield CeleryPublisher(app)


def _messages(queue: str) -> list[tuple[int, int]]:
    """(job_id, attempt) of the messages waiting on ``queue``, in delivery order
    (Kombu pushes on the left and workers pop from the right)."""
    client = require_redis(REDIS_DB)
    out = []
    for raw in reversed(client.lrange(queue, 0, -1)):
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        out.append(tuple(body[0]))
    return out


def _world(database_url: str, *, nodes: dict[str, dict], libraries: dict[str, str], jobs_per_library: int):
    engine = make_engine(database_url)
    init_schema(engine)
    with session_scope(engine) as session:
        for name, spec in nodes.items():
            session.add(Node(name=name, hostname=name, version="x", queues=spec["queues"],
                             concurrency=spec.get("concurrency", {q: 1 for q in spec["queues"]}),
                             capabilities={"families": spec["families"]}, status="online",
                             last_heartbeat=utcnow()))
        ids = {}
        for name, preference in libraries.items():
            library = Library(name=name, roots=["/x"], profile={"hardware_preference": preference})
            session.add(library)
            session.flush()
            ids[name] = library.id
            rows = [{"library_id": library.id, "path": f"/x/{name}-{i}.mkv", "status": QUEUED,
                     "target_codec": "hevc", "kind": "transcode"} for i in range(jobs_per_library)]
            if rows:
                session.execute(insert(Job), rows)
    return engine, ids


def test_queues_stay_bounded_and_follow_capabilities(database_url: str, publisher: CeleryPublisher) -> None:
    engine, ids = _world(database_url, nodes={
        "gpu": {"queues": ["nvenc", "cpu"], "families": {"nvenc": ["hevc"], "cpu": ["hevc", "av1"]},
                "concurrency": {"nvenc": 2, "cpu": 1}},
        "small": {"queues": ["cpu"], "families": {"cpu": ["hevc", "av1"]}},
    }, libraries={"auto": "auto", "cpu-only": "cpu", "qsv-only": "qsv"}, jobs_per_library=50)
    with session_scope(engine) as session:
        report = dispatcher.dispatch(session, publisher)
    # nvenc: 2 slots x 2; cpu: 2 slots x 2
    assert report.by_queue == {"nvenc": 4, "cpu": 4}
    assert len(_messages("nvenc")) == 4 and len(_messages("cpu")) == 4
    with session_scope(engine) as session:
        routed = session.execute(select(Job.library_id, Job.queue).where(Job.published_at.is_not(None))).all()
        assert all(queue == "nvenc" for lib, queue in routed if lib == ids["auto"] and queue != "cpu")
        assert all(queue == "cpu" for lib, queue in routed if lib == ids["cpu-only"])
        assert not [1 for lib, _ in routed if lib == ids["qsv-only"]], "no qsv node: those jobs wait"
        # a second pass publishes nothing: the queues are full
        assert dispatcher.dispatch(session, publisher).published == 0
        # one job finishes: exactly one more message
        first = session.scalar(select(Job).where(Job.queue == "cpu").order_by(Job.id))
        session.execute(update(Job).where(Job.id == first.id).values(status="done"))
        session.commit()
        assert dispatcher.dispatch(session, publisher).published == 1
    engine.dispose()


def test_priority_and_move_to_top(sqlite_url: str, publisher: CeleryPublisher) -> None:
    engine, _ = _world(sqlite_url, nodes={"n": {"queues": ["cpu"], "families": {"cpu": ["hevc"]}}},
                       libraries={"lib": "auto"}, jobs_per_library=10)
    with session_scope(engine) as session:
        last = session.scalar(select(Job.id).order_by(Job.id.desc()))
        job_actions.move_to_top(session, [last])
        dispatcher.dispatch(session, publisher)
    assert _messages("cpu")[0][0] == last
    engine.dispose()


def test_lost_messages_are_republished_and_paused_queue_publishes_nothing(
        database_url: str, publisher: CeleryPublisher) -> None:
    engine, _ = _world(database_url, nodes={"n": {"queues": ["cpu"], "families": {"cpu": ["hevc"]}}},
                       libraries={"lib": "auto"}, jobs_per_library=5)
    with session_scope(engine) as session:
        settings_store.set_value(session, "queue_paused", True)
        session.commit()
        assert dispatcher.dispatch(session, publisher).paused
        assert _messages("cpu") == []
        settings_store.set_value(session, "queue_paused", False)
        session.commit()
        assert dispatcher.dispatch(session, publisher).published == 2
    published = _messages("cpu")
    require_redis(REDIS_DB).flushdb()  # the broker restarts empty
    with session_scope(engine) as session:
        assert dispatcher.dispatch(session, publisher).republished == 0, "within the grace period"
        later = utcnow() + dispatcher.REPUBLISH_GRACE + timedelta(seconds=1)
        report = dispatcher.dispatch(session, publisher, now=later)
    assert report.republished == 2
    assert sorted(_messages("cpu")) == sorted(published)
    engine.dispose()


def test_offline_and_paused_nodes_get_no_work(sqlite_url: str, publisher: CeleryPublisher) -> None:
    engine, _ = _world(sqlite_url, nodes={
        "stale": {"queues": ["cpu"], "families": {"cpu": ["hevc"]}},
        "paused": {"queues": ["cpu"], "families": {"cpu": ["hevc"]}},
    }, libraries={"lib": "auto"}, jobs_per_library=5)
    with session_scope(engine) as session:
        session.execute(update(Node).where(Node.name == "stale").values(
            last_heartbeat=utcnow() - timedelta(minutes=10)))
        session.execute(update(Node).where(Node.name == "paused").values(desired_state="paused"))
        session.commit()
        assert dispatcher.dispatch(session, publisher).published == 0
    engine.dispose()


def test_choose_queue_rules() -> None:
    capacity = dispatcher.Capacity()
    capacity.slots.update({"nvenc": 1, "cpu": 1})
    capacity.codecs.update({"nvenc": {"hevc"}, "cpu": {"hevc", "av1"}})
    budget = {"nvenc": 1, "cpu": 1, "qsv": 0, "vaapi": 0}
    assert dispatcher.choose_queue("transcode", "hevc", "auto", False, capacity, budget) == "nvenc"
    assert dispatcher.choose_queue("transcode", "av1", "auto", False, capacity, budget) == "cpu"
    assert dispatcher.choose_queue("transcode", "hevc", "qsv", False, capacity, budget) is None
    assert dispatcher.choose_queue("transcode", "hevc", "nvenc", True, capacity, budget) == "cpu"
    assert dispatcher.choose_queue("healthcheck", "hevc", "auto", False, capacity, budget) == "cpu"
    assert dispatcher.choose_queue("transcode", "hevc", "auto", False, capacity,
                                   {**budget, "nvenc": 0}) == "cpu"


def test_jobs_no_node_can_take_do_not_block_the_ones_behind(sqlite_url: str, publisher: CeleryPublisher) -> None:
    """Hundreds of AV1 jobs first, only an HEVC-only GPU node online: the HEVC jobs behind them
    still go out (the dispatcher pages past what it cannot route)."""
    engine, ids = _world(sqlite_url, nodes={"gpu": {"queues": ["nvenc"], "families": {"nvenc": ["hevc"]},
                                                    "concurrency": {"nvenc": 3}}},
                         libraries={"av1": "auto", "hevc": "auto"}, jobs_per_library=0)
    with session_scope(engine) as session:
        session.execute(insert(Job), [{"library_id": ids["av1"], "path": f"/x/a{i}.mkv", "status": QUEUED,
                                       "target_codec": "av1", "kind": "transcode"} for i in range(1200)])
        session.execute(insert(Job), [{"library_id": ids["hevc"], "path": f"/x/h{i}.mkv", "status": QUEUED,
                                       "target_codec": "hevc", "kind": "transcode"} for i in range(10)])
    with session_scope(engine) as session:
        report = dispatcher.dispatch(session, publisher)
    assert report.by_queue == {"nvenc": 6}
    engine.dispose()


def test_jobs_published_to_a_queue_whose_nodes_left_are_rerouted(sqlite_url: str, publisher: CeleryPublisher) -> None:
    engine, _ = _world(sqlite_url, nodes={"cpu": {"queues": ["cpu"], "families": {"cpu": ["hevc"]}}},
                       libraries={"lib": "auto"}, jobs_per_library=3)
    with session_scope(engine) as session:
        session.execute(update(Job).values(queue="nvenc", published_at=utcnow() - timedelta(hours=1)))
        session.commit()
        report = dispatcher.dispatch(session, publisher)
    assert report.released == 3 and report.by_queue == {"cpu": 2}
    engine.dispose()
