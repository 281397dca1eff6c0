"""Fixtures shared by every test: real PostgreSQL, Redis, SQLite files and generated media."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.media import make_clip
from support.receiver import Receiver, running_receiver
from support.services import fresh_postgres_database, require_redis

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clean_codecshift_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from the defaults, not from whatever the developer exported."""
    for key in list(os.environ):
        if key.startswith("CODECSHIFT_") and not key.startswith("CODECSHIFT_TEST_"):
            monkeypatch.delenv(key)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'codecshift.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Run a test on both databases CodecShift supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'codecshift.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture
def redis_client():
    client = require_redis()
    return client


@pytest.fixture(scope="session")
def clip_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def h264_clip(clip_cache: Path) -> Path:
    """A one-second, 160x90 H.264 + AAC Matroska clip that HEVC shrinks well."""
    return make_clip(clip_cache / "source.mkv")


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


@pytest.fixture
def copy_clip(media_dir: Path, h264_clip: Path):
    """Copy the cached clip into this test's media folder under a given name."""
    def _copy(name: str = "movie.mkv", source: Path | None = None) -> Path:
        target = media_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source or h264_clip, target)
        return target
    return _copy


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local notification target (Apprise json://) recording what it receives."""
    with running_receiver() as rec:
        yield rec
