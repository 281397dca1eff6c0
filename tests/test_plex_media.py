"""Scanning Plex sections through plexapi: every movie part, every episode of every show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codecshift.pathmap import describe_unreachable, to_local, validate_mappings
from codecshift.plex import (
    PlexConnection,
    PlexNotFound,
    PlexServerError,
    PlexUnreachable,
    SectionReader,
    iter_media,
    normalize_codec,
    normalize_container,
    resolve_item,
    to_summary,
)
from support.fake_plex import FakeEpisode, FakeMovie, FakePlex, FakeSection, FakeShow, media, running


@pytest.fixture
def fake() -> Iterator[FakePlex]:
    yield from running()


@pytest.fixture
def conn(fake: FakePlex) -> PlexConnection:
    return PlexConnection(fake.url, fake.token, timeout=5)


def _metadata_reloads(fake: FakePlex) -> list[str]:
    """Requests for single items: a scan must never make one per item."""
    return [p for p in fake.paths_requested()
            if p.startswith("/library/metadata/") and not p.endswith("allLeaves")]


def test_movie_section_lists_every_part_of_every_version(fake: FakePlex, conn: PlexConnection) -> None:
    items = list(iter_media(conn, "1"))
    assert [i.path for i in items] == [
        "/data/movies/Alpha (2001)/Alpha.mkv",
        "/data/movies/Bravo (2002)/Bravo.mp4",
        "/data/movies/Charlie (2003)/Charlie - cd1.avi",
        "/data/movies/Charlie (2003)/Charlie - cd2.avi",
        "/data/movies/Delta (2004)/Delta 1080p.mkv",
        "/data/movies/Delta (2004)/Delta 2160p.mkv",
        "/data/movies/Echo (2005)/Echo.mkv",
    ]
    alpha = items[0]
    assert (alpha.rating_key, alpha.section_key, alpha.kind) == ("101", "1", "movie")
    assert alpha.title == "Alpha (2001)"
    assert (alpha.size, alpha.container, alpha.video_codec) == (700_000_000, "matroska", "h264")
    assert (alpha.width, alpha.height, alpha.duration, alpha.bitrate) == (1920, 1080, 60.0, 4_000_000)
    delta_4k = items[5]
    assert (delta_4k.video_codec, delta_4k.width, delta_4k.height, delta_4k.bitrate) == ("hevc", 3840, 2160,
                                                                                           20_000_000)
    assert items[2].container == "avi" and items[2].video_codec == "mpeg4"
    assert _metadata_reloads(fake) == []


@pytest.mark.parametrize("page_size", [1, 2, 5, 200])
def test_paging_gives_the_same_files(fake: FakePlex, conn: PlexConnection, page_size: int) -> None:
    paths = [i.path for i in iter_media(conn, "1", page_size=page_size)]
    assert len(paths) == 7 and len(set(paths)) == 7
    listings = [r for r in fake.requests if r.path == "/library/sections/1/all"]
    assert len(listings) == 5 // page_size + 1
    assert all(r.size == str(page_size) for r in listings)


def test_tv_section_lists_every_episode_of_every_show(fake: FakePlex, conn: PlexConnection) -> None:
    reader = SectionReader(conn, 2)
    assert reader.info.title == "TV Shows" and reader.info.locations == ("/data/tv", "/data/tv2")
    assert reader.count() == 5
    items = list(reader.iter_media(page_size=1))
    assert [(i.title, i.rating_key) for i in items] == [
        ("Show A S01E01 Pilot", "511"), ("Show A S01E02 Second", "512"), ("Show A S02E01 Return", "521"),
        ("Show B S01E01 One", "611"), ("Show B S01E02 Two", "612"),
    ]
    assert all(i.kind == "episode" and i.section_key == "2" for i in items)
    assert items[2].video_codec == "hevc" and items[3].container == "mp4" and items[3].height == 720
    assert {p for p in fake.paths_requested() if p.endswith("allLeaves")} == {
        "/library/metadata/500/allLeaves", "/library/metadata/600/allLeaves"}
    assert _metadata_reloads(fake) == []


def test_show_with_more_episodes_than_one_page() -> None:
    episodes = [FakeEpisode(str(1000 + n), f"Ep {n}", 1 + n // 100, 1 + n % 100,
                            [media(f"/tv/Long/S{1 + n // 100:02d}/e{n:03d}.mkv")]) for n in range(230)]
    show = FakeShow("900", "Long", episodes, season_keys={1: "901", 2: "902", 3: "903"})
    with FakePlex([FakeSection("7", "Long TV", "show", ["/tv"], shows=[show])]) as fake:
        conn = PlexConnection(fake.url, fake.token, timeout=5)
        assert SectionReader(conn, "7").count() == 230
        assert len({i.path for i in iter_media(conn, "7")}) == 230


def test_plex_reports_a_vanished_file(fake: FakePlex, conn: PlexConnection) -> None:
    fake.sections[0].movies[0].media[0].parts[0].exists = False
    fake.sections[0].movies[1].media[0].parts[0].exists = True
    assert [i.exists for i in iter_media(conn, "1")][:3] == [False, True, None]


def test_missing_attributes_never_cost_a_request_per_item() -> None:
    """plexapi reloads a partial item when an attribute is missing; scans must not."""
    movies = [FakeMovie(str(200 + n), f"Unmatched {n}", None, [media(f"/m/u{n}.mkv")]) for n in range(3)]
    with FakePlex([FakeSection("1", "Movies", "movie", ["/m"], movies=movies)]) as fake:
        conn = PlexConnection(fake.url, fake.token, timeout=5)
        assert [i.title for i in iter_media(conn, "1")] == ["Unmatched 0", "Unmatched 1", "Unmatched 2"]
        assert _metadata_reloads(fake) == []


def test_movie_count(conn: PlexConnection) -> None:
    assert SectionReader(conn, "1").count() == 5


def test_summary_fills_the_media_file_columns(conn: PlexConnection) -> None:
    from codecshift.models import MediaFile

    summary = to_summary(next(iter_media(conn, "1")))
    assert summary == {"container": "matroska", "video_codec": "h264", "width": 1920, "height": 1080,
                       "duration": 60.0, "bitrate": 4_000_000}
    assert set(summary) <= set(MediaFile.__table__.columns.keys())


@pytest.mark.parametrize(("plex", "ffmpeg"), [("h264", "h264"), ("hevc", "hevc"), ("h265", "hevc"),
                                              ("HEVC", "hevc"), ("mpeg2", "mpeg2video"), ("vc1", "vc1"),
                                              ("av1", "av1"), ("", None), (None, None)])
def test_codec_names_follow_ffmpeg(plex: str | None, ffmpeg: str | None) -> None:
    assert normalize_codec(plex) == ffmpeg


@pytest.mark.parametrize(("plex", "prober"), [("mkv", "matroska"), ("mp4", "mp4"), ("m4v", "mp4"),
                                              ("mov", "mov"), ("avi", "avi"), ("ts", "mpegts"),
                                              ("webm", "webm"), ("wmv", "asf"), (None, None)])
def test_container_names_follow_the_prober(plex: str | None, prober: str | None) -> None:
    assert normalize_container(plex) == prober


def test_mappings_apply_to_plex_paths(conn: PlexConnection, tmp_path: Path) -> None:
    """Plex's paths become the node's; a file the node lacks gets a message naming the mapping."""
    share = tmp_path / "nas"
    mappings = validate_mappings([{"from": "/data/movies", "to": str(share / "films")},
                                  {"from": "/data/tv", "to": str(share / "tv")},
                                  {"from": "/data/movies", "to": "/Volumes/films", "node": "mac"}])
    items = list(iter_media(conn, "1"))
    for item in items[:-1]:  # everything but Echo exists on this node
        local = Path(to_local(item.path, mappings).path)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(b"\0")
    mapped = [to_local(item.path, mappings) for item in items]
    assert mapped[0].path == str(share / "films" / "Alpha (2001)" / "Alpha.mkv")
    missing = [(item, m) for item, m in zip(items, mapped, strict=True) if not Path(m.path).exists()]
    assert [item.title for item, _ in missing] == ["Echo (2005)"]
    message = describe_unreachable(missing[0][0].path, missing[0][1], node="node-a", library="Movies")
    assert f"mapping /data/movies -> {share / 'films'} (library 'Movies') may need fixing" in message
    assert to_local(items[0].path, mappings, node="mac").path == "/Volumes/films/Alpha (2001)/Alpha.mkv"
    episode = next(iter_media(conn, "2"))
    assert to_local(episode.path, mappings).path == str(share / "tv/Show A/Season 01/Show A - S01E01.mkv")


def test_resolve_item_by_rating_key(conn: PlexConnection) -> None:
    assert [i.path for i in resolve_item(conn, "101")] == ["/data/movies/Alpha (2001)/Alpha.mkv"]
    assert [i.path for i in resolve_item(conn, 104)][1].endswith("Delta 2160p.mkv")
    assert [i.rating_key for i in resolve_item(conn, "500")] == ["511", "512", "521"]  # a show
    assert [i.rating_key for i in resolve_item(conn, "601")] == ["611", "612"]  # a season
    episode = resolve_item(conn, "612")
    assert [(i.kind, i.section_key, i.title) for i in episode] == [("episode", "2", "Show B S01E02 Two")]
    with pytest.raises(PlexNotFound, match="has no item '99999'"):
        resolve_item(conn, "99999")


def test_unknown_or_non_video_section_is_refused(conn: PlexConnection) -> None:
    with pytest.raises(PlexNotFound, match="has no library section '42'"):
        SectionReader(conn, "42")
    with pytest.raises(PlexNotFound, match="artist section"):
        SectionReader(conn, "3")


def test_plex_failing_mid_scan_raises_a_typed_error(fake: FakePlex, conn: PlexConnection) -> None:
    reader = SectionReader(conn, "2")
    fake.fail(503, path_prefix="/library/metadata/600/allLeaves")
    seen = []
    with pytest.raises(PlexServerError) as info:
        for item in reader.iter_media():
            seen.append(item.rating_key)
    assert seen == ["511", "512", "521"] and info.value.temporary
    assert fake.token not in str(info.value)


def test_plex_down_before_a_scan(fake: FakePlex, conn: PlexConnection) -> None:
    fake.down()
    with pytest.raises(PlexUnreachable):
        list(iter_media(conn, "1"))
