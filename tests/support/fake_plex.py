"""A real local HTTP server that answers the Plex endpoints plexapi uses, with Plex's XML.

It runs threaded on 127.0.0.1 on a free port and serves what plexapi asks
for (see plexapi/server.py, library.py, base.py): the server root and
/identity, /library and /library/sections (with Location elements), a
section's /all listing (type=1 movies, 2 shows, 4 episodes) paged by the
X-Plex-Container-Start/Size headers or query arguments as Plex does, items
under /library/metadata/<key> and their /allLeaves, and the partial refresh
/library/sections/<key>/refresh?path=..., which it records.

Every request except /identity must carry the right X-Plex-Token (401
otherwise, as Plex answers). Switches make it fail with a status, answer
slowly, answer like a web server that is not Plex, or go down and up again.
"""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.etree.ElementTree import Element, SubElement, tostring

from support.tls import self_signed

SEARCH_TYPES = {"1": "movie", "2": "show", "3": "season", "4": "episode"}


@dataclass
class FakePart:
    file: str
    size: int = 1_000_000
    container: str = "mkv"
    duration_ms: int | None = None
    id: int = 0
    exists: bool | None = None  # Plex reports exists/accessible only when it checked the file


@dataclass
class FakeMedia:
    parts: list[FakePart]
    video_codec: str = "h264"
    width: int = 1920
    height: int = 1080
    bitrate_kbps: int = 4000
    duration_ms: int = 60_000
    container: str = "mkv"
    video_profile: str = "high"
    id: int = 0


@dataclass
class FakeMovie:
    rating_key: str
    title: str
    year: int | None  # None: Plex leaves the attribute out, as for an unmatched item
    media: list[FakeMedia]


@dataclass
class FakeEpisode:
    rating_key: str
    title: str
    season: int
    index: int
    media: list[FakeMedia]


@dataclass
class FakeShow:
    rating_key: str
    title: str
    episodes: list[FakeEpisode]
    season_keys: dict[int, str] = field(default_factory=dict)


@dataclass
class FakeSection:
    key: str
    title: str
    type: str  # movie | show | artist
    locations: list[str]
    movies: list[FakeMovie] = field(default_factory=list)
    shows: list[FakeShow] = field(default_factory=list)


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, list[str]]
    token: str | None
    start: str | None
    size: str | None


def media(file: str, *, codec: str = "h264", width: int = 1920, height: int = 1080, size: int = 1_000_000,
          container: str = "mkv", bitrate_kbps: int = 4000, duration_ms: int = 60_000,
          extra_files: tuple[str, ...] = ()) -> FakeMedia:
    """One version of an item; ``extra_files`` makes a stacked (multi-part) version."""
    parts = [FakePart(f, size=size, container=container, duration_ms=duration_ms)
             for f in (file, *extra_files)]
    return FakeMedia(parts, video_codec=codec, width=width, height=height, bitrate_kbps=bitrate_kbps,
                     duration_ms=duration_ms, container=container)


def default_sections() -> list[FakeSection]:
    """A movie section (5 movies, one stacked in two parts, one in two versions),
    a TV section (2 shows, 5 episodes over 3 seasons) and a music section."""
    movies = [
        FakeMovie("101", "Alpha", 2001, [media("/data/movies/Alpha (2001)/Alpha.mkv", size=700_000_000)]),
        FakeMovie("102", "Bravo", 2002, [media("/data/movies/Bravo (2002)/Bravo.mp4", container="mp4",
                                                width=1280, height=720, bitrate_kbps=2500)]),
        FakeMovie("103", "Charlie", 2003, [media(
            "/data/movies/Charlie (2003)/Charlie - cd1.avi", codec="mpeg4", width=720, height=480,
            container="avi", extra_files=("/data/movies/Charlie (2003)/Charlie - cd2.avi",))]),
        FakeMovie("104", "Delta", 2004, [media("/data/movies/Delta (2004)/Delta 1080p.mkv"),
                                          media("/data/movies/Delta (2004)/Delta 2160p.mkv", codec="hevc",
                                                width=3840, height=2160, bitrate_kbps=20000)]),
        FakeMovie("105", "Echo", 2005, [media("/data/movies/Echo (2005)/Echo.mkv", codec="hevc")]),
    ]
    show_a = FakeShow("500", "Show A", [
        FakeEpisode("511", "Pilot", 1, 1, [media("/data/tv/Show A/Season 01/Show A - S01E01.mkv")]),
        FakeEpisode("512", "Second", 1, 2, [media("/data/tv/Show A/Season 01/Show A - S01E02.mkv")]),
        FakeEpisode("521", "Return", 2, 1, [media("/data/tv/Show A/Season 02/Show A - S02E01.mkv",
                                                  codec="hevc")]),
    ], season_keys={1: "501", 2: "502"})
    show_b = FakeShow("600", "Show B", [
        FakeEpisode("611", "One", 1, 1, [media("/data/tv/Show B/Season 01/Show B - S01E01.mp4",
                                               container="mp4", width=1280, height=720)]),
        FakeEpisode("612", "Two", 1, 2, [media("/data/tv/Show B/Season 01/Show B - S01E02.mp4",
                                               container="mp4", width=1280, height=720)]),
    ], season_keys={1: "601"})
    return [
        FakeSection("1", "Movies", "movie", ["/data/movies"], movies=movies),
        FakeSection("2", "TV Shows", "show", ["/data/tv", "/data/tv2"], shows=[show_a, show_b]),
        FakeSection("3", "Music", "artist", ["/data/music"]),
    ]


class FakePlex:
    """The server and its switches. Use as a context manager or start()/stop()."""

    def __init__(self, sections: list[FakeSection] | None = None, *, token: str = "fake-plex-token-1234",
                 machine_identifier: str = "fake-machine-0001", friendly_name: str = "Fake Plex",
                 version: str = "1.41.0.8992-fake", tls: bool = False) -> None:
        self.sections = default_sections() if sections is None else sections
        self.token = token
        self.machine_identifier = machine_identifier
        self.friendly_name = friendly_name
        self.version = version
        self.tls = tls
        self.delay = 0.0
        self.not_plex = False
        self.refreshes: list[tuple[str, str]] = []
        self.requests: list[RequestRecord] = []
        self._failures: list[list] = []  # [status, remaining or None, path prefix or None]
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-plex-") if tls else None
        self.port = 0
        self._assign_ids()

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> FakePlex:
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        httpd.daemon_threads = True
        httpd.fake = self  # type: ignore[attr-defined]
        if self.tls:
            httpd.socket = self._ssl_context().wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"fake-plex-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def down(self) -> None:
        """Stop listening: connections are refused, as when Plex is not running."""
        self.stop()

    def up(self) -> None:
        """Listen again on the same port."""
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> FakePlex:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- switches ----------------------------------------------------------

    def fail(self, status: int, *, times: int | None = None, path_prefix: str | None = None) -> None:
        """Answer ``status`` to the next ``times`` requests (all if None) under ``path_prefix``."""
        with self._lock:
            self._failures.append([status, times, path_prefix])

    def heal(self) -> None:
        with self._lock:
            self._failures.clear()
        self.delay = 0.0
        self.not_plex = False

    def paths_requested(self) -> list[str]:
        with self._lock:
            return [record.path for record in self.requests]

    def _take_failure(self, path: str) -> int | None:
        with self._lock:
            for failure in self._failures:
                status, remaining, prefix = failure
                if prefix is not None and not path.startswith(prefix):
                    continue
                if remaining is not None:
                    if remaining <= 0:
                        continue
                    failure[1] = remaining - 1
                return status
        return None

    # -- data --------------------------------------------------------------

    def _assign_ids(self) -> None:
        next_id = 1000
        for section in self.sections:
            videos = [m for m in section.movies] + [e for s in section.shows for e in s.episodes]
            for video in videos:
                for version in video.media:
                    next_id += 1
                    version.id = version.id or next_id
                    for part in version.parts:
                        next_id += 1
                        part.id = part.id or next_id

    def section(self, key: str) -> FakeSection | None:
        return next((s for s in self.sections if s.key == key), None)

    def _ssl_context(self) -> ssl.SSLContext:
        assert self._tmp is not None
        cert, key = (str(p) for p in self_signed(Path(self._tmp.name), "fake-plex"))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context


# -- XML -----------------------------------------------------------------------

def _container(**attrs: object) -> Element:
    root = Element("MediaContainer")
    for name, value in attrs.items():
        if value is not None:
            root.set(name, str(value))
    return root


def _media_xml(parent: Element, versions: list[FakeMedia]) -> None:
    for version in versions:
        m = SubElement(parent, "Media", id=str(version.id), duration=str(version.duration_ms),
                       bitrate=str(version.bitrate_kbps), width=str(version.width),
                       height=str(version.height), aspectRatio="1.78", audioChannels="2", audioCodec="aac",
                       videoCodec=version.video_codec, videoResolution=str(version.height),
                       container=version.container, videoFrameRate="24p", videoProfile=version.video_profile)
        for part in version.parts:
            element = SubElement(m, "Part", id=str(part.id), key=f"/library/parts/{part.id}/1700000000/file",
                                 duration=str(part.duration_ms or version.duration_ms), file=part.file,
                                 size=str(part.size), container=part.container,
                                 videoProfile=version.video_profile)
            if part.exists is not None:
                element.set("exists", "1" if part.exists else "0")
                element.set("accessible", "1" if part.exists else "0")


def _movie_xml(parent: Element, movie: FakeMovie, section: FakeSection) -> None:
    video = SubElement(parent, "Video", ratingKey=movie.rating_key,
                       key=f"/library/metadata/{movie.rating_key}", guid=f"plex://movie/{movie.rating_key}",
                       type="movie", title=movie.title, librarySectionID=section.key, addedAt="1700000000")
    if movie.year is not None:
        video.set("year", str(movie.year))
    _media_xml(video, movie.media)


def _episode_xml(parent: Element, episode: FakeEpisode, show: FakeShow, section: FakeSection) -> None:
    season_key = show.season_keys.get(episode.season, "")
    video = SubElement(parent, "Video", ratingKey=episode.rating_key,
                       key=f"/library/metadata/{episode.rating_key}", parentRatingKey=season_key,
                       grandparentRatingKey=show.rating_key, type="episode", title=episode.title,
                       grandparentTitle=show.title, parentTitle=f"Season {episode.season}",
                       index=str(episode.index), parentIndex=str(episode.season),
                       librarySectionID=section.key, addedAt="1700000000")
    _media_xml(video, episode.media)


def _show_xml(parent: Element, show: FakeShow, section: FakeSection) -> None:
    SubElement(parent, "Directory", ratingKey=show.rating_key,
               key=f"/library/metadata/{show.rating_key}/children", guid=f"plex://show/{show.rating_key}",
               type="show", title=show.title,
               librarySectionID=section.key, leafCount=str(len(show.episodes)),
               childCount=str(len(show.season_keys)), addedAt="1700000000")


def _season_xml(parent: Element, show: FakeShow, number: int, key: str, section: FakeSection) -> None:
    SubElement(parent, "Directory", ratingKey=key, key=f"/library/metadata/{key}/children",
               parentRatingKey=show.rating_key, type="season", title=f"Season {number}", index=str(number),
               parentTitle=show.title, librarySectionID=section.key,
               leafCount=str(sum(1 for e in show.episodes if e.season == number)))


class _Handler(BaseHTTPRequestHandler):
    server_version = "PlexMediaServer/fake"
    protocol_version = "HTTP/1.0"

    @property
    def fake(self) -> FakePlex:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _send(self, status: int, body: bytes, content_type: str = "text/xml;charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _xml(self, root: Element) -> None:
        self._send(200, b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="utf-8"))

    def _error(self, status: int, title: str) -> None:
        html = f"<html><head><title>{title}</title></head><body><h1>{status} {title}</h1></body></html>"
        self._send(status, html.encode(), "text/html")

    def _handle(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        def header_or_arg(name: str) -> str | None:
            return self.headers.get(name) or (query.get(name) or [None])[0]

        token = header_or_arg("X-Plex-Token")
        start = header_or_arg("X-Plex-Container-Start")
        size = header_or_arg("X-Plex-Container-Size")
        with fake._lock:
            fake.requests.append(RequestRecord(self.command, path, query, token, start, size))
        if fake.delay:
            time.sleep(fake.delay)
        status = fake._take_failure(path)
        if status is not None:
            self._error(status, "Service Unavailable" if status == 503 else "Error")
            return
        if fake.not_plex:
            self._send(200, b"<!DOCTYPE html><html><body><p>Router admin</p></body></html>", "text/html")
            return
        if path == "/identity":
            self._xml(_container(size=0, claimed=1, machineIdentifier=fake.machine_identifier,
                                 version=fake.version))
            return
        if token != fake.token:
            self._error(401, "Unauthorized")
            return
        self._route(path, query, int(start or 0), None if size is None else int(size))

    def _route(self, path: str, query: dict[str, list[str]], start: int, size: int | None) -> None:
        fake = self.fake
        segments = [s for s in path.split("/") if s]
        if path == "/":
            self._xml(_container(size=0, friendlyName=fake.friendly_name,
                                 machineIdentifier=fake.machine_identifier, version=fake.version,
                                 platform="Linux", myPlex=1, transcoderActiveVideoSessions=0))
        elif path == "/library":
            root = _container(size=3, allowSync=0, title1="Plex Library")
            for key, title in (("sections", "Library Sections"), ("recentlyAdded", "Recently Added Content"),
                               ("onDeck", "On Deck Content")):
                SubElement(root, "Directory", key=key, title=title)
            self._xml(root)
        elif path == "/library/sections":
            root = _container(size=len(fake.sections), allowSync=0, title1="Plex Library")
            for section in fake.sections:
                directory = SubElement(root, "Directory", key=section.key, type=section.type,
                                       title=section.title, agent="tv.plex.agents.none", scanner="Plex",
                                       language="en-US", uuid=f"uuid-{section.key}", refreshing="0")
                for index, location in enumerate(section.locations, start=1):
                    SubElement(directory, "Location", id=str(int(section.key) * 10 + index), path=location)
            self._xml(root)
        elif len(segments) == 4 and segments[:2] == ["library", "sections"] and segments[3] == "all":
            self._section_all(segments[2], query, start, size)
        elif len(segments) == 4 and segments[:2] == ["library", "sections"] and segments[3] == "refresh":
            section = fake.section(segments[2])
            if section is None:
                self._error(404, "Not Found")
                return
            with fake._lock:
                fake.refreshes.append((section.key, (query.get("path") or [""])[0]))
            self._send(200, b"")
        elif len(segments) in (3, 4) and segments[:2] == ["library", "metadata"]:
            leaves = len(segments) == 4 and segments[3] == "allLeaves"
            if len(segments) == 4 and not leaves:
                self._error(404, "Not Found")
                return
            self._metadata(segments[2], leaves, start, size)
        else:
            self._error(404, "Not Found")

    def _page(self, root: Element, elements: list, start: int, size: int | None, emit) -> None:
        chosen = elements[start:] if size is None else elements[start:start + size]
        root.set("size", str(len(chosen)))
        root.set("totalSize", str(len(elements)))
        root.set("offset", str(start))
        for element in chosen:
            emit(root, element)
        self._xml(root)

    def _section_all(self, key: str, query: dict[str, list[str]], start: int, size: int | None) -> None:
        section = self.fake.section(key)
        if section is None:
            self._error(404, "Not Found")
            return
        default = {"movie": "movie", "show": "show"}.get(section.type, "artist")
        wanted = SEARCH_TYPES.get((query.get("type") or [""])[0], default)
        root = _container(allowSync=1, librarySectionID=section.key, librarySectionTitle=section.title,
                          title1=section.title, viewGroup=wanted, identifier="com.plexapp.plugins.library")
        if section.type == "movie" and wanted == "movie":
            self._page(root, section.movies, start, size, lambda r, m: _movie_xml(r, m, section))
        elif section.type == "show" and wanted == "show":
            self._page(root, section.shows, start, size, lambda r, s: _show_xml(r, s, section))
        elif section.type == "show" and wanted == "episode":
            pairs = [(show, episode) for show in section.shows for episode in show.episodes]
            self._page(root, pairs, start, size, lambda r, p: _episode_xml(r, p[1], p[0], section))
        else:
            self._page(root, [], start, size, lambda r, x: None)

    def _find(self, rating_key: str) -> tuple[str, FakeSection, object, FakeShow | None] | None:
        """What a rating key names: ("movie"|"show"|"season"|"episode", section, object, its show)."""
        for section in self.fake.sections:
            for movie in section.movies:
                if movie.rating_key == rating_key:
                    return "movie", section, movie, None
            for show in section.shows:
                if show.rating_key == rating_key:
                    return "show", section, show, show
                for number, key in show.season_keys.items():
                    if key == rating_key:
                        return "season", section, number, show
                for episode in show.episodes:
                    if episode.rating_key == rating_key:
                        return "episode", section, episode, show
        return None

    def _metadata(self, rating_key: str, leaves: bool, start: int, size: int | None) -> None:
        found = self._find(rating_key)
        if found is None or (leaves and found[0] not in ("show", "season")):
            self._error(404, "Not Found")
            return
        kind, section, obj, show = found
        root = _container(librarySectionID=section.key, librarySectionTitle=section.title,
                          identifier="com.plexapp.plugins.library")
        if leaves:
            assert show is not None
            episodes = [e for e in show.episodes if kind == "show" or e.season == obj]
            root.set("key", rating_key)
            root.set("viewGroup", "episode")
            self._page(root, episodes, start, size, lambda r, e: _episode_xml(r, e, show, section))
        elif kind == "movie":
            self._page(root, [obj], 0, None, lambda r, m: _movie_xml(r, m, section))
        elif kind == "show":
            self._page(root, [obj], 0, None, lambda r, x: _show_xml(r, x, section))
        elif kind == "season":
            self._page(root, [obj], 0, None, lambda r, n: _season_xml(r, show, n, rating_key, section))
        else:
            self._page(root, [obj], 0, None, lambda r, e: _episode_xml(r, e, show, section))


def running(**kwargs: object) -> Iterator[FakePlex]:
    """Generator for a pytest fixture: ``yield from running()``."""
    with FakePlex(**kwargs) as fake:  # type: ignore[arg-type]
        yield fake
