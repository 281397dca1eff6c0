"""The partial refresh after a replacement: only the changed folder, retried, never raising."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codecshift.pathmap import parent_folder, to_source, validate_mappings
from codecshift.plex import PlexConnection, RefreshResult, refresh_folder
from support.fake_plex import FakePlex, running


@pytest.fixture
def fake() -> Iterator[FakePlex]:
    yield from running()


@pytest.fixture
def conn(fake: FakePlex) -> PlexConnection:
    return PlexConnection(fake.url, fake.token, timeout=5, machine_identifier=fake.machine_identifier)


class Pauses:
    """Records the pauses between tries instead of sleeping through them."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


def test_refresh_after_a_replacement_scans_only_that_folder(fake: FakePlex, conn: PlexConnection) -> None:
    # The control worker knows the file by its own path; Plex must be told its own.
    mappings = validate_mappings([{"from": "/data/movies", "to": "/mnt/nas/movies"}])
    local = "/mnt/nas/movies/Alpha (2001)/Alpha.mkv"
    folder = parent_folder(to_source(local, mappings).path)
    result = refresh_folder(conn, "1", folder)
    assert result.ok and result.attempts == 1 and result.error is None
    assert fake.refreshes == [("1", "/data/movies/Alpha (2001)")]


def test_folder_with_characters_that_need_quoting(fake: FakePlex, conn: PlexConnection) -> None:
    folder = "/data/tv/Show & Co: 100% #1/Season 01"
    assert refresh_folder(conn, 2, folder).ok
    assert fake.refreshes == [("2", folder)]


def test_temporary_failures_are_retried(fake: FakePlex, conn: PlexConnection) -> None:
    fake.fail(503, times=2, path_prefix="/library/sections/1/refresh")
    pauses = Pauses()
    result = refresh_folder(conn, "1", "/data/movies/Bravo (2002)", attempts=4, backoff=0.5, sleep=pauses)
    assert result.ok and result.attempts == 3
    assert pauses.taken == [0.5, 1.0]
    assert fake.refreshes == [("1", "/data/movies/Bravo (2002)")]


def test_plex_down_gives_a_failure_after_retries_without_raising(fake: FakePlex,
                                                                  conn: PlexConnection) -> None:
    fake.down()
    pauses = Pauses()
    result = refresh_folder(conn, "1", "/data/movies/Alpha (2001)", attempts=3, backoff=0.2, sleep=pauses)
    assert isinstance(result, RefreshResult)
    assert not result.ok and result.attempts == 3 and result.error_kind == "unreachable"
    assert "cannot connect to Plex" in (result.error or "") and fake.token not in (result.error or "")
    assert pauses.taken == [0.2, 0.4]
    fake.up()
    assert refresh_folder(conn, "1", "/data/movies/Alpha (2001)").ok
    assert fake.refreshes == [("1", "/data/movies/Alpha (2001)")]


def test_server_errors_until_the_last_try_give_a_failure(fake: FakePlex, conn: PlexConnection) -> None:
    fake.fail(503)
    result = refresh_folder(conn, "1", "/data/movies", attempts=2, backoff=0.01)
    assert not result.ok and result.attempts == 2 and result.error_kind == "server_error"
    assert "HTTP 503" in (result.error or "")
    assert fake.refreshes == []


def test_hanging_plex_is_bounded_by_the_deadline(fake: FakePlex, conn: PlexConnection) -> None:
    """Each try's timeout is cut to the time left, so a hung server cannot hold the caller."""
    fake.delay = 3.0
    result = refresh_folder(conn, "1", "/data/movies", attempts=10, deadline=1.0, backoff=0.01)
    assert not result.ok and result.error_kind == "unreachable"
    assert result.elapsed < 2.5  # the bound under test: deadline plus one request's grace
    assert result.attempts < 10


def test_permanent_failures_are_not_retried(fake: FakePlex, conn: PlexConnection) -> None:
    pauses = Pauses()
    wrong = PlexConnection(fake.url, "wrong-token-5555", timeout=5)
    result = refresh_folder(wrong, "1", "/data/movies", sleep=pauses)
    assert not result.ok and result.attempts == 1 and result.error_kind == "unauthorized"
    assert "wrong-token-5555" not in (result.error or "")
    missing = refresh_folder(conn, "42", "/data/movies", sleep=pauses)
    assert not missing.ok and missing.attempts == 1 and missing.error_kind == "not_found"
    fake.machine_identifier = "replaced-server"
    other = refresh_folder(conn, "1", "/data/movies", sleep=pauses)
    assert not other.ok and other.error_kind == "wrong_server"
    assert pauses.taken == [] and fake.refreshes == []


def test_invalid_section_key_is_refused_without_a_request(fake: FakePlex, conn: PlexConnection) -> None:
    result = refresh_folder(conn, "1/../all", "/data/movies")
    assert not result.ok and result.error_kind == "config" and result.attempts == 0
    assert fake.requests == []
