"""Reading a Plex section's files from Plex's metadata, without probing them.

A movie section yields every part of every movie; a TV section yields every
part of every episode of every show (shows are read page by page, each
show's episodes through its ``allLeaves``). Listings are paged, so a section
of 100k items is never held in memory at once, and plexapi's automatic
reload of partial objects is turned off, so a missing attribute never costs
one request per item.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from plexapi import exceptions as plex_exc
from plexapi.library import LibrarySection
from plexapi.server import PlexServer
from plexapi.video import Episode, Movie, Season, Show

from codecshift.plex.client import PlexConnection, PlexSection, _Session, open_server, translate_errors
from codecshift.plex.errors import PlexNotFound, safe_url

DEFAULT_PAGE_SIZE = 200

# Plex's container names that differ from the ones the prober stores (codecshift.media.probe).
_CONTAINER_ALIASES = {"mkv": "matroska", "mk3d": "matroska", "m4v": "mp4", "ts": "mpegts", "m2ts": "mpegts",
                      "mts": "mpegts", "wmv": "asf", "mpg": "mpeg", "vob": "mpeg", "ogv": "ogg",
                      "realmedia": "rm"}
# Plex's codec names that differ from FFmpeg's (which the scanner stores).
_CODEC_ALIASES = {"h265": "hevc", "x265": "hevc", "hevc": "hevc", "h264": "h264", "avc": "h264",
                  "avc1": "h264", "x264": "h264", "mpeg2": "mpeg2video", "mpeg1": "mpeg1video",
                  "divx": "mpeg4", "xvid": "mpeg4", "vc-1": "vc1", "wmv": "wmv3"}


@dataclass(frozen=True)
class PlexMediaItem:
    """One media part (one file) of a movie or episode, as Plex describes it.

    ``path`` is Plex's path; map it with codecshift.pathmap before opening it.
    Container and codec use the prober's names (matroska, hevc), not Plex's
    (mkv, h265), so they compare with probed files. ``duration`` is in
    seconds and ``bitrate`` in bits per second (Plex gives milliseconds and
    kbit/s). ``exists`` is Plex's own file check when it reported one, else None.
    """

    path: str
    size: int | None
    container: str | None
    video_codec: str | None
    width: int | None
    height: int | None
    duration: float | None
    bitrate: int | None
    rating_key: str
    section_key: str
    kind: str  # movie | episode
    title: str
    part_id: int | None = None
    exists: bool | None = None


def normalize_codec(codec: str | None) -> str | None:
    if not codec:
        return None
    codec = codec.strip().lower()
    return _CODEC_ALIASES.get(codec, codec)


def normalize_container(container: str | None) -> str | None:
    if not container:
        return None
    container = container.strip().lower()
    return _CONTAINER_ALIASES.get(container, container)


def to_summary(item: PlexMediaItem) -> dict[str, Any]:
    """The probe-summary columns of MediaFile that Plex's metadata can fill."""
    return {"container": item.container, "video_codec": item.video_codec, "width": item.width,
            "height": item.height, "duration": item.duration, "bitrate": item.bitrate}


def _title(video: Movie | Episode) -> str:
    if isinstance(video, Episode):
        season, episode = video.parentIndex, video.index
        code = f"S{season:02d}E{episode:02d}" if season is not None and episode is not None else ""
        return " ".join(part for part in (video.grandparentTitle or "", code, video.title or "") if part)
    year = f" ({video.year})" if getattr(video, "year", None) else ""
    return f"{video.title or ''}{year}"


def items_of(video: Movie | Episode, section_key: str) -> Iterator[PlexMediaItem]:
    """Every part of every version (Media) of one movie or episode."""
    video._autoReload = False
    kind = "episode" if isinstance(video, Episode) else "movie"
    title = _title(video)
    for media in video.media:
        for part in media.parts:
            if not part.file:
                continue
            duration_ms = part.duration or media.duration
            yield PlexMediaItem(
                path=part.file, size=part.size,
                container=normalize_container(part.container or media.container),
                video_codec=normalize_codec(media.videoCodec), width=media.width, height=media.height,
                duration=duration_ms / 1000.0 if duration_ms else None,
                bitrate=media.bitrate * 1000 if media.bitrate else None,
                rating_key=str(video.ratingKey), section_key=section_key, kind=kind, title=title,
                part_id=part.id, exists=part.exists)


class SectionReader:
    """One connection to one section: its description, its size, its files."""

    def __init__(self, conn: PlexConnection, section_key: str | int) -> None:
        self.conn = conn
        self.server: PlexServer = open_server(conn)
        self._session = self.server._session if isinstance(self.server._session, _Session) else None
        with translate_errors(conn, self._session, f"reading section {section_key}"):
            try:
                section = self.server.library.sectionByID(int(section_key))
            except (plex_exc.NotFound, ValueError):
                raise PlexNotFound(f"Plex at {safe_url(conn.url)} has no library section "
                                   f"{section_key!r}") from None
        if section.type not in ("movie", "show"):
            raise PlexNotFound(f"section {section_key} ({section.title}) is a {section.type} section; "
                               f"only movie and TV sections hold video")
        self.section: LibrarySection = section
        self.info = PlexSection(key=str(section.key), title=section.title or "", type=section.type,
                                locations=tuple(section.locations))

    def count(self) -> int:
        """How many movies or episodes the section holds (for progress; parts may be more)."""
        libtype = "movie" if self.info.type == "movie" else "episode"
        with translate_errors(self.conn, self._session, f"counting section {self.info.key}"):
            return self.section.totalViewSize(libtype=libtype, includeCollections=False) or 0

    def _pages(self, libtype: str, page_size: int) -> Iterator[Any]:
        start = 0
        while True:
            with translate_errors(self.conn, self._session, f"listing section {self.info.key}"):
                batch = self.section.search(libtype=libtype, container_start=start,
                                            container_size=page_size, maxresults=page_size)
            for item in batch:
                item._autoReload = False
                yield item
            if len(batch) < page_size:
                return
            start += page_size

    def iter_media(self, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[PlexMediaItem]:
        """Every file of the section, movie by movie or show by show, episode by episode."""
        key = self.info.key
        if self.info.type == "movie":
            for movie in self._pages("movie", page_size):
                yield from items_of(movie, key)
            return
        for show in self._pages("show", page_size):
            with translate_errors(self.conn, self._session, f"listing episodes of {show.title!r}"):
                episodes = show.episodes()
            for episode in episodes:
                yield from items_of(episode, key)


def iter_media(conn: PlexConnection, section_key: str | int,
               page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[PlexMediaItem]:
    """Every file of a movie or TV section (every episode of every show)."""
    yield from SectionReader(conn, section_key).iter_media(page_size)


def resolve_item(conn: PlexConnection, rating_key: str | int) -> list[PlexMediaItem]:
    """The files behind one rating key: a movie or episode, or every episode of a show or season.

    Plex's webhooks name an item by rating key, not by file; this finds its files.
    Other kinds of item (music, photos) have no video files and give an empty list.
    """
    server = open_server(conn)
    session = server._session if isinstance(server._session, _Session) else None
    with translate_errors(conn, session, f"reading item {rating_key}"):
        try:
            item = server.fetchItem(int(rating_key))
        except (plex_exc.NotFound, ValueError):
            raise PlexNotFound(f"Plex at {safe_url(conn.url)} has no item {rating_key!r}") from None
        section_key = str(getattr(item, "librarySectionID", "") or "")
        if isinstance(item, Movie | Episode):
            return list(items_of(item, section_key))
        if isinstance(item, Show | Season):
            episodes = server.fetchItems(f"/library/metadata/{item.ratingKey}/allLeaves", Episode)
            result = []
            for episode in episodes:
                episode_section = str(getattr(episode, "librarySectionID", "") or section_key)
                result.extend(items_of(episode, episode_section))
            return result
        return []
