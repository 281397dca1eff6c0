"""Put on disk the files a fake Plex server lists, so a Plex library's scan finds them.

Plex calls its files ``/data/...``; the tests keep them under a temporary
``nas`` folder and give the library the mapping ``/data -> nas``, as a user
whose Plex runs in Docker would.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from support.fake_plex import FakeEpisode, FakeMovie, FakePart, FakePlex

PLEX_ROOT = "/data"


def parts(fake: FakePlex) -> Iterator[tuple[FakeMovie | FakeEpisode, FakePart]]:
    for section in fake.sections:
        videos = [*section.movies, *(episode for show in section.shows for episode in show.episodes)]
        for video in videos:
            for version in video.media:
                for part in version.parts:
                    yield video, part


def local_path(nas: Path, plex_path: str) -> Path:
    return nas / plex_path.removeprefix(PLEX_ROOT + "/")


def materialize(fake: FakePlex, nas: Path, *, clip: Path | None = None, skip: tuple[str, ...] = (),
                size: int = 4096) -> None:
    """Create every listed file under ``nas`` (a copy of ``clip``, or ``size`` random bytes that no
    prober could read) and make Plex report each file's real size, as Plex does after its scan."""
    for _video, part in parts(fake):
        if part.file in skip:
            continue
        target = local_path(nas, part.file)
        target.parent.mkdir(parents=True, exist_ok=True)
        if clip is not None:
            shutil.copy2(clip, target)
        else:
            target.write_bytes(os.urandom(size))
        part.size = target.stat().st_size


def mappings(nas: Path, **extra: str) -> list[dict[str, str | None]]:
    """The default mapping ``/data -> nas``, plus ``node=to`` overrides of the same prefix."""
    result: list[dict[str, str | None]] = [{"from": PLEX_ROOT, "to": str(nas), "node": None}]
    result += [{"from": PLEX_ROOT, "to": to, "node": node} for node, to in extra.items()]
    return result
