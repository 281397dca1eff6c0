"""Webhook payloads from Plex, Sonarr and Radarr become the files to queue, or a reason to ignore them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from codecshift.pathmap import to_local, to_source, validate_mappings
from codecshift.plex import (
    PlexConnection,
    WebhookError,
    parse_arr_webhook,
    parse_plex_webhook,
    plex_payload_from_multipart,
    resolve_item,
)
from support.fake_plex import FakePlex, running

MACHINE = "fake-machine-0001"


def plex_event(event: str = "library.new", *, rating_key: str = "612", item_type: str = "episode",
               server: str = MACHINE, **metadata: object) -> dict:
    """Shaped like the JSON Plex Media Server posts in its 'payload' form field."""
    return {
        "event": event, "user": True, "owner": True,
        "Account": {"id": 1, "title": "owner"},
        "Server": {"title": "Fake Plex", "uuid": server},
        "Metadata": {"librarySectionType": "show", "ratingKey": rating_key,
                     "key": f"/library/metadata/{rating_key}", "type": item_type, "title": "Two",
                     "grandparentTitle": "Show B", "librarySectionTitle": "TV Shows", "librarySectionID": 2,
                     "librarySectionKey": "/library/sections/2", **metadata},
    }


def multipart(payload: dict, *, with_thumb: bool = True) -> tuple[bytes, str]:
    """The body and Content-Type of a real multipart/form-data request, as requests encodes it."""
    files: dict[str, tuple] = {"payload": (None, json.dumps(payload))}
    if with_thumb:
        files["thumb"] = ("image.jpg", b"\xff\xd8\xff\xe0fakejpeg\r\n--not-a-boundary", "image/jpeg")
    prepared = requests.Request("POST", "http://codecshift.local/webhooks/plex", files=files).prepare()
    return prepared.body, prepared.headers["Content-Type"]


@pytest.fixture
def fake() -> Iterator[FakePlex]:
    yield from running()


def test_plex_library_new_resolves_to_the_new_files(fake: FakePlex) -> None:
    body, content_type = multipart(plex_event())
    event = parse_plex_webhook(plex_payload_from_multipart(body, content_type), machine_identifier=MACHINE)
    assert event.actionable and event.source == "plex" and event.event == "library.new"
    assert (event.plex_rating_key, event.plex_section_key, event.plex_item_type) == ("612", "2", "episode")
    assert event.paths == ()  # Plex names the item, not the file: resolve it through Plex
    conn = PlexConnection(fake.url, fake.token, timeout=5, machine_identifier=MACHINE)
    files = resolve_item(conn, event.plex_rating_key)
    assert [f.path for f in files] == ["/data/tv/Show B/Season 01/Show B - S01E02.mp4"]


def test_plex_new_show_resolves_to_every_episode(fake: FakePlex) -> None:
    body, content_type = multipart(plex_event(rating_key="500", item_type="show"), with_thumb=False)
    event = parse_plex_webhook(plex_payload_from_multipart(body, content_type))
    conn = PlexConnection(fake.url, fake.token, timeout=5)
    assert len(resolve_item(conn, event.plex_rating_key or "")) == 3


def test_plex_payload_with_media_parts_gives_paths_directly() -> None:
    event = parse_plex_webhook(json.dumps(plex_event(Media=[{"Part": [{"file": "/data/tv/x.mkv"},
                                                                     {"file": "relative.mkv"}]}])))
    assert event.paths == ("/data/tv/x.mkv",)


@pytest.mark.parametrize(("payload", "reason"), [
    (plex_event("media.play"), "'media.play' is not library.new"),
    (plex_event("library.on.deck"), "is not library.new"),
    (plex_event(server="someone-else"), "from Plex server someone-else, not the linked one"),
    (plex_event(item_type="track"), "a Plex track has no video to convert"),
])
def test_other_plex_events_are_ignored_with_a_reason(payload: dict, reason: str) -> None:
    event = parse_plex_webhook(payload, machine_identifier=MACHINE)
    assert not event.actionable and reason in (event.ignored or "")


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"payload=1", "application/x-www-form-urlencoded", "multipart/form-data"),
    (b"--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n",
     "multipart/form-data; boundary=b", "no 'payload' part"),
])
def test_unreadable_plex_bodies_are_errors(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(WebhookError, match=message):
        plex_payload_from_multipart(body, content_type)


@pytest.mark.parametrize(("payload", "message"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"event": "library.new", "Server": {"uuid": MACHINE}}), "no Metadata object"),
    (json.dumps(plex_event(rating_key="abc")), "no valid Metadata.ratingKey"),
])
def test_malformed_plex_payloads_are_errors(payload: str, message: str) -> None:
    with pytest.raises(WebhookError, match=message):
        parse_plex_webhook(payload)


SONARR_DOWNLOAD = {
    "eventType": "Download", "instanceName": "Sonarr", "isUpgrade": False,
    "series": {"id": 3, "title": "Show B", "path": "/tv/Show B", "tvdbId": 1},
    "episodes": [{"id": 9, "episodeNumber": 3, "seasonNumber": 1, "title": "Three"}],
    "episodeFile": {"id": 77, "relativePath": "Season 01/Show B - S01E03.mkv",
                    "path": "/tv/Show B/Season 01/Show B - S01E03.mkv", "quality": "WEBDL-1080p",
                    "size": 1234},
}
RADARR_DOWNLOAD = {
    "eventType": "Download", "instanceName": "Radarr", "isUpgrade": True,
    "movie": {"id": 5, "title": "Foxtrot", "year": 2006, "folderPath": "/movies/Foxtrot (2006)"},
    "movieFile": {"id": 8, "relativePath": "Foxtrot (2006).mkv",
                  "path": "/movies/Foxtrot (2006)/Foxtrot (2006).mkv"},
}


def test_sonarr_import_gives_the_episode_file() -> None:
    event = parse_arr_webhook(json.dumps(SONARR_DOWNLOAD).encode())
    assert (event.source, event.event, event.title) == ("sonarr", "Download", "Show B")
    assert event.paths == ("/tv/Show B/Season 01/Show B - S01E03.mkv",)


def test_sonarr_without_full_path_joins_series_folder_and_relative_path() -> None:
    payload = {**SONARR_DOWNLOAD, "episodeFile": {"relativePath": "Season 01/e.mkv"},
               "episodeFiles": [{"relativePath": "Season 01/f.mkv"}, {"path": "/tv/Show B/Season 01/e.mkv"}]}
    assert parse_arr_webhook(payload).paths == ("/tv/Show B/Season 01/e.mkv", "/tv/Show B/Season 01/f.mkv")


def test_radarr_import_gives_the_movie_file() -> None:
    event = parse_arr_webhook(RADARR_DOWNLOAD)
    assert (event.source, event.title) == ("radarr", "Foxtrot")
    assert event.paths == ("/movies/Foxtrot (2006)/Foxtrot (2006).mkv",)
    no_path = {**RADARR_DOWNLOAD, "movieFile": {"relativePath": "Foxtrot (2006).mkv"}}
    assert parse_arr_webhook(no_path).paths == ("/movies/Foxtrot (2006)/Foxtrot (2006).mkv",)


@pytest.mark.parametrize(("payload", "reason"), [
    ({"eventType": "Test", "instanceName": "Sonarr", "series": {"id": 1}}, "test event"),
    ({**SONARR_DOWNLOAD, "eventType": "Grab"}, "'Grab' is not an import"),
    ({**RADARR_DOWNLOAD, "eventType": "Rename"}, "'Rename' is not an import"),
    ({"eventType": "Health", "instanceName": "Radarr"}, "'Health' is not an import"),
    ({**SONARR_DOWNLOAD, "episodeFile": {"relativePath": "e.mkv"}, "series": {"title": "S"}},
     "names no file path"),
    ({"eventType": "Download", "something": {}}, "neither a Sonarr nor a Radarr payload"),
])
def test_other_arr_events_are_ignored_with_a_reason(payload: dict, reason: str) -> None:
    event = parse_arr_webhook(payload)
    assert not event.actionable and reason in (event.ignored or "") and event.paths == ()


@pytest.mark.parametrize("payload", ["", "null", "{}", '{"eventType": ""}'])
def test_malformed_arr_payloads_are_errors(payload: str) -> None:
    with pytest.raises(WebhookError):
        parse_arr_webhook(payload)


def test_sonarr_paths_map_to_the_library_and_then_to_a_node() -> None:
    """Sonarr sees /tv, Plex (the library) sees /data/tv, a node sees /mnt/nas/tv."""
    mappings = validate_mappings([{"from": "/data/tv", "to": "/mnt/nas/tv"},
                                  {"from": "/data/tv", "to": "/tv", "node": "sonarr"}])
    path = parse_arr_webhook(SONARR_DOWNLOAD).paths[0]
    library_path = to_source(path, mappings, node="sonarr").path
    assert library_path == "/data/tv/Show B/Season 01/Show B - S01E03.mkv"
    assert to_local(library_path, mappings).path == "/mnt/nas/tv/Show B/Season 01/Show B - S01E03.mkv"
