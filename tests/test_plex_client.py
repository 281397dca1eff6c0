"""Linking a Plex server through plexapi against a real local HTTP server speaking Plex's XML."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from codecshift.plex import (
    PlexConfigError,
    PlexConnection,
    PlexError,
    PlexIdentity,
    PlexNotAServer,
    PlexSection,
    PlexServerError,
    PlexTLSError,
    PlexUnauthorized,
    PlexUnreachable,
    PlexWrongServer,
    check_connection,
    link,
    list_sections,
)
from support.fake_plex import FakePlex, running


@pytest.fixture
def fake() -> Iterator[FakePlex]:
    yield from running()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fails(call, error: type[PlexError], token: str) -> PlexError:
    with pytest.raises(error) as info:
        call()
    exc = info.value
    assert token not in str(exc) and token not in repr(exc)
    assert exc.__cause__ is None or token not in str(exc.__cause__)
    return exc


def test_link_returns_the_servers_identity(fake: FakePlex) -> None:
    identity = link(fake.url + "/", fake.token, timeout=5)
    assert identity == PlexIdentity("Fake Plex", "fake-machine-0001", "1.41.0.8992-fake")
    # The identity came from the server, with the token, before anything was saved.
    tokens = {r.path: r.token for r in fake.requests}
    assert tokens["/"] == fake.token and tokens["/library/sections"] == fake.token


def test_wrong_token_is_refused_without_echoing_it(fake: FakePlex) -> None:
    wrong = "not-the-token-9876"
    exc = _fails(lambda: link(fake.url, wrong, timeout=5), PlexUnauthorized, wrong)
    assert "refused the token" in exc.message and exc.status == 401
    assert fake.token not in exc.message


def test_nothing_listening_is_unreachable() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    exc = _fails(lambda: link(url, "secret-token-1", timeout=3), PlexUnreachable, "secret-token-1")
    assert "cannot connect to Plex at " + url in exc.message
    assert exc.temporary


def test_wrong_path_is_not_a_plex_server(fake: FakePlex) -> None:
    exc = _fails(lambda: link(fake.url + "/web", fake.token, timeout=5), PlexNotAServer, fake.token)
    assert "not a Plex Media Server" in exc.message


def test_a_web_page_is_not_a_plex_server(fake: FakePlex) -> None:
    fake.not_plex = True
    exc = _fails(lambda: link(fake.url, fake.token, timeout=5), PlexNotAServer, fake.token)
    assert "not like a Plex Media Server" in exc.message


@pytest.mark.parametrize(("url", "token", "message"), [
    ("", "t0ken", "must be http:// or https://"),
    ("plex.local:32400", "t0ken", "must be http:// or https://"),
    ("ftp://plex.local", "t0ken", "must be http:// or https://"),
    ("http://plex.local:32400/?X-Plex-Token=t0ken", "t0ken", "without credentials or query"),
    ("http://user:t0ken@plex.local:32400", "t0ken", "without credentials or query"),
    ("http://plex.local:99999", "t0ken", "not a valid URL"),
    ("http://plex.local:32400", "", "a Plex token is required"),
    ("http://plex.local:32400", "two words", "spaces or control characters"),
])
def test_unusable_url_or_token_fails_before_any_request(url: str, token: str, message: str) -> None:
    exc = _fails(lambda: link(url, token, timeout=1), PlexConfigError, "t0ken")
    assert message in exc.message


def test_server_error_while_linking_is_temporary(fake: FakePlex) -> None:
    fake.fail(503)
    exc = _fails(lambda: link(fake.url, fake.token, timeout=5), PlexServerError, fake.token)
    assert exc.status == 503 and exc.temporary and "HTTP 503" in exc.message


def test_slow_server_times_out(fake: FakePlex) -> None:
    fake.delay = 1.5
    exc = _fails(lambda: link(fake.url, fake.token, timeout=0.3), PlexUnreachable, fake.token)
    assert "did not answer within 0.3 s" in exc.message


def test_list_sections_gives_movie_and_tv_sections_with_locations(fake: FakePlex) -> None:
    sections = list_sections(PlexConnection(fake.url, fake.token, timeout=5))
    assert sections == [PlexSection("1", "Movies", "movie", ("/data/movies",)),
                        PlexSection("2", "TV Shows", "show", ("/data/tv", "/data/tv2"))]


def test_connection_check_refuses_a_different_server_at_the_linked_url(fake: FakePlex) -> None:
    conn = PlexConnection(fake.url, fake.token, timeout=5, machine_identifier="fake-machine-0001")
    assert check_connection(conn).machine_identifier == "fake-machine-0001"
    fake.machine_identifier = "another-machine"
    exc = _fails(lambda: check_connection(conn), PlexWrongServer, fake.token)
    assert "not the linked one" in exc.message and "another-machine" in exc.message


def test_token_is_not_in_the_connection_repr() -> None:
    assert "hidden-token" not in repr(PlexConnection("http://plex:32400", "hidden-token"))


def test_tls_verification_is_on_by_default_and_can_be_turned_off() -> None:
    with FakePlex(tls=True) as fake:
        exc = _fails(lambda: link(fake.url, fake.token, timeout=5), PlexTLSError, fake.token)
        assert "turn off TLS verification" in exc.message
        assert link(fake.url, fake.token, timeout=5, verify_tls=False).name == "Fake Plex"
