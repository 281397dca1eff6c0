"""The dashboard app over a real database and a real Redis broker, with an admin key, a
node key and signed-in people, plus helpers that put rows in place for API and page tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from codecshift.apikeys import create_key
from codecshift.config import load_settings
from codecshift.db import engine_for, init_schema, session_scope
from codecshift.models import History, Job, Library, MediaFile, Node, utcnow
from codecshift.users import create_user
from codecshift.version import read_version
from support.services import redis_database, require_redis

PASSWORD = "correct horse battery"


@dataclass
class Dashboard:
    """An app, its engine and the credentials of every kind of caller."""

    app: Flask
    engine: Any
    admin_key: str
    node_key: str
    redis: Any
    node_key_id: int | None = None

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def api(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> Any:
        """Call the API with the admin key unless another is given ("" sends none)."""
        key = self.admin_key if key is None else key
        headers = {"X-API-Key": key} if key else {}
        headers.update(kwargs.pop("headers", {}))
        return self.client().open(path, method=method, headers=headers, **kwargs)

    def signed_in(self, username: str = "admin", admin: bool = True) -> FlaskClient:
        """A client signed in through /login as a (new) local user."""
        with session_scope(self.engine) as session:
            from codecshift.users import find_user

            if find_user(session, username) is None:
                create_user(session, username, PASSWORD, is_admin=admin)
        client = self.app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = csrf_from(page)
        response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
        return client

    def control_messages(self, queue: str = "control") -> int:
        """Messages waiting on a control worker's queue (a requested dispatch lands on "control")."""
        return int(self.redis.llen(queue))

    # -- rows ---------------------------------------------------------------------------

    def library(self, root: Path, name: str = "Movies", **values: Any) -> int:
        root.mkdir(parents=True, exist_ok=True)
        with session_scope(self.engine) as session:
            library = Library(name=name, kind="folder", roots=[str(root)], profile={}, path_mappings=[], **values)
            session.add(library)
            session.flush()
            return library.id

    def job(self, path: str, status: str = "queued", library_id: int | None = None, **values: Any) -> int:
        with session_scope(self.engine) as session:
            media_id = None
            if library_id is not None and values.pop("with_media", True):
                media = MediaFile(library_id=library_id, path=path, size=values.get("source_size") or 1000,
                                  mtime_ns=1, state="queued", video_codec="h264")
                session.add(media)
                session.flush()
                media_id = media.id
            job = Job(path=path, status=status, library_id=library_id, media_file_id=media_id, **values)
            if status in ("done", "failed", "skipped", "cancelled") and "finished_at" not in values:
                job.finished_at = utcnow()
            session.add(job)
            session.flush()
            return job.id

    def node(self, name: str, version: str | None = None, **values: Any) -> None:
        with session_scope(self.engine) as session:
            session.add(Node(name=name, hostname=f"{name}.local", version=version or read_version(),
                             capabilities={"encoders": {"libx265": {"family": "cpu", "codec": "hevc",
                                                                    "works": True, "error": None}},
                                           "families": {"cpu": ["hevc"]}},
                             queues=["cpu"], concurrency={"cpu": 1}, status="online", last_heartbeat=utcnow(),
                             current_jobs=[], owner_key_id=self.node_key_id, **values))

    def history(self, count: int = 1, *, finished_at: datetime | None = None, **values: Any) -> list[int]:
        ids = []
        with session_scope(self.engine) as session:
            for index in range(count):
                row = History(path=values.get("path", f"/media/movie-{index}.mkv"),
                              source_codec=values.get("source_codec", "h264"),
                              target_codec=values.get("target_codec", "hevc"),
                              size_before=values.get("size_before", 1000), size_after=values.get("size_after", 400),
                              node=values.get("node", "node-a"), encoder=values.get("encoder", "libx265"),
                              library_id=values.get("library_id"), quality_metric=values.get("quality_metric"),
                              quality_score=values.get("quality_score"),
                              encode_seconds=values.get("encode_seconds", 10.0),
                              total_seconds=values.get("total_seconds", 12.0),
                              finished_at=(finished_at or utcnow()) - timedelta(seconds=index))
                session.add(row)
                session.flush()
                ids.append(row.id)
        return ids


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or \
        re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@contextmanager
def dashboard_app(database_url: str, tmp_path: Path, *, auth: bool = True) -> Iterator[Dashboard]:
    """The app factory over ``database_url`` with a Redis database of its own as the broker."""
    with redis_database() as number:
        yield from _dashboard(database_url, tmp_path, auth, number)


def _dashboard(database_url: str, tmp_path: Path, auth: bool, number: int) -> Iterator[Dashboard]:
    from tasks.app import create_celery
    from web.app import create_app

    redis = require_redis(number)
    config = load_settings({"CODECSHIFT_DATABASE_URL": database_url, "CODECSHIFT_SECRET_KEY": "test-secret",
                            "CODECSHIFT_BROKER_URL": f"redis://127.0.0.1:6379/{number}",
                            "CODECSHIFT_DATA_DIR": str(tmp_path / "data"),
                            "CODECSHIFT_AUTH_ENABLED": "true" if auth else "false"})
    engine = engine_for(config.effective_database_url)
    init_schema(engine)
    with session_scope(engine) as session:
        admin_key = create_key(session, "test admin", "admin").secret
        node = create_key(session, "test node", "node")
        node_key, node_key_id = node.secret, node.id
    app = create_app(config, engine=engine, celery_app=create_celery(config))
    app.config["TESTING"] = True
    yield Dashboard(app=app, engine=engine, admin_key=admin_key, node_key=node_key, redis=redis,
                    node_key_id=node_key_id)


def error_of(response: Any) -> dict[str, Any]:
    """The one error body shape: {"error": {"code", "message", "field"?}}."""
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), body
    return body["error"]
