"""VERSION.txt is the only version string."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import codecshift

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_the_same_everywhere() -> None:
    version = (ROOT / "VERSION.txt").read_text(encoding="utf-8").strip()
    assert codecshift.__version__ == version
    assert metadata.version("codecshift") == version
    result = subprocess.run([sys.executable, "-m", "codecshift.cli.main", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"codecshift {version}"


def test_no_other_file_spells_the_version() -> None:
    version = (ROOT / "VERSION.txt").read_text(encoding="utf-8").strip()
    offenders = []
    for pattern in ("codecshift/**/*.py", "tasks/**/*.py", "web/**/*.py", "setup.cfg", "pyproject.toml"):
        for path in ROOT.glob(pattern):
            if f'"{version}"' in path.read_text(encoding="utf-8") or f"'{version}'" in path.read_text(
                    encoding="utf-8"):
                offenders.append(str(path))
    assert offenders == []
