"""Helpers shared by the benchmarks: databases to run against, timing, printing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


@contextmanager
def databases(tmp: Path, which: str = "both") -> Iterator[list[tuple[str, str]]]:
    """(label, URL) for a fresh SQLite file and a fresh PostgreSQL database."""
    from support.services import fresh_postgres_database

    found = []
    if which in ("both", "sqlite"):
        found.append(("SQLite", f"sqlite:///{tmp / 'bench.db'}"))
    if which in ("both", "postgresql"):
        with fresh_postgres_database("cs_bench") as url:
            yield [*found, ("PostgreSQL", url)]
            return
    yield found


def timed(func: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44} {value:>16}  {note}")
