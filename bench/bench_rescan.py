"""Rescan of an unchanged library: files per second through our scanner against a bare
directory walk with stat over the same tree, on SQLite and on PostgreSQL.

    .venv/bin/python bench/bench_rescan.py [--files 100000] [--db both|sqlite|postgresql]

The files are empty `.mkv` files in nested folders; the library's rows are seeded with
their exact fingerprints, so the rescan must find every file unchanged and probe none.
Goal: at least 50k files/s. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _common import databases, row, timed
from sqlalchemy import func, insert, select

from codecshift.db import init_schema, make_engine, session_scope
from codecshift.models import Library, MediaFile, utcnow
from codecshift.services import scanner


def make_tree(root: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        folder = root / f"show{index // 1000:03d}" / f"season{(index // 100) % 10:02d}"
        if index % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"episode {index:06d}.mkv"
        path.touch()
        paths.append(path)
    return paths


def bare_walk(root: Path) -> int:
    seen = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.stat(os.path.join(folder, name))
            seen += 1
    return seen


def seed(url: str, root: Path, paths: list[Path]) -> tuple[object, int]:
    engine = make_engine(url)
    init_schema(engine)
    now = utcnow()
    with session_scope(engine) as session:
        library = Library(name="bench", roots=[str(root)])
        session.add(library)
        session.flush()
        library_id = library.id
        rows = []
        for path in paths:
            info = path.stat()
            rows.append({"library_id": library_id, "path": str(path), "size": info.st_size,
                         "mtime_ns": info.st_mtime_ns, "inode": info.st_ino, "state": "skipped",
                         "video_codec": "hevc", "first_seen_at": now, "updated_at": now})
        for start in range(0, len(rows), 20_000):
            session.execute(insert(MediaFile), rows[start:start + 20_000])
    return engine, library_id


def rescan(engine: object, library_id: int) -> scanner.ScanCounters:
    with session_scope(engine) as session:
        run, _ = scanner.start_scan(session, library_id)
    probes: list[str] = []
    counters = scanner.Scanner(engine, run.id, prober=lambda p: probes.append(p)).run()
    if probes or counters.new or counters.changed:
        raise SystemExit(f"an unchanged library was probed: {counters}")
    return counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--db", default="both", choices=("both", "sqlite", "postgresql"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codecshift-bench-") as tmp:
        root = Path(tmp) / "library"
        paths = make_tree(root, args.files)
        walk_time, seen = timed(lambda: bare_walk(root))
        ours_walk, _ = timed(lambda: sum(1 for _ in scanner.walk(str(root))))
        print(f"Rescan of {args.files:,} unchanged files")
        row("bare os.walk + stat (baseline)", f"{seen / walk_time:,.0f} files/s")
        row("scanner.walk alone", f"{args.files / ours_walk:,.0f} files/s")
        with databases(Path(tmp), args.db) as targets:
            for label, url in targets:
                engine, library_id = seed(url, root, paths)
                elapsed, counters = timed(lambda e=engine, lib=library_id: rescan(e, lib))
                with session_scope(engine) as session:
                    assert session.scalar(select(func.count()).select_from(MediaFile)) == args.files
                rate = counters.seen / elapsed
                row(f"full rescan on {label}", f"{rate:,.0f} files/s",
                    f"{elapsed:.2f} s, {rate / (seen / walk_time):.0%} of the bare walk; goal >= 50,000/s")
                engine.dispose()


if __name__ == "__main__":
    main()
