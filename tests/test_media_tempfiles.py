"""Names of temporary files: beside the source, tied to their job, recognised by the scanner."""

from __future__ import annotations

from pathlib import Path

import pytest

from codecshift.media.files import iter_media_files
from codecshift.media.tempfiles import (
    cli_tag,
    find_artifacts,
    hold_path_for,
    is_codecshift_artifact,
    is_disposable,
    is_quarantine_dir,
    job_of_tag,
    job_tag,
    journal_path_for,
    parse_tag,
    partial_path_for,
    temp_path_for,
)


def test_temp_output_sits_beside_the_source_and_names_its_job(tmp_path: Path) -> None:
    source = tmp_path / "Films" / "Heat (1995).avi"
    temp = temp_path_for(source, job_tag(42, 3), ".mkv")
    assert temp.parent == source.parent
    assert temp.name == ".codecshift-job42-a3.out.Heat (1995).mkv"
    assert parse_tag(temp) == "job42-a3" and job_of_tag("job42-a3") == (42, 3)
    assert hold_path_for(source, "job42-a3").name == ".codecshift-job42-a3.orig.Heat (1995).avi"
    assert journal_path_for(source, "job42-a3").name == ".codecshift-job42-a3.journal.Heat (1995).avi.json"


def test_cli_tags_are_random_and_not_jobs() -> None:
    first, second = cli_tag(), cli_tag()
    assert first != second and first.startswith("cli-")
    assert parse_tag(temp_path_for("/m/a.mkv", first, "mkv")) == first
    assert job_of_tag(first) is None


@pytest.mark.parametrize("bad", ["job1", "x-a1", "cli-", "job1-a1/../x", "CLI-abcdef"])
def test_bad_tags_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        temp_path_for("/m/a.mkv", bad, ".mkv")
    assert job_of_tag(bad) is None


def test_long_names_are_shortened_to_fit_the_filesystem(tmp_path: Path) -> None:
    name = "é" * 120 + ".mkv"  # 244 bytes
    temp = temp_path_for(tmp_path / name, job_tag(123456, 12), ".mkv")
    assert len(temp.name.encode()) <= 255 and temp.name.endswith(".mkv")
    assert parse_tag(temp) == "job123456-a12"
    temp.write_bytes(b"ok")  # the filesystem accepts it


def test_artifacts_and_quarantine_are_recognised(tmp_path: Path) -> None:
    (tmp_path / "movie.mkv").write_bytes(b"x")
    temp = temp_path_for(tmp_path / "movie.mkv", job_tag(1, 1), ".mkv")
    temp.write_bytes(b"x")
    quarantine = tmp_path / ".codecshift-quarantine" / "job1-a1"
    quarantine.mkdir(parents=True)
    (quarantine / "movie.mkv").write_bytes(b"x")
    assert is_codecshift_artifact(temp) and is_codecshift_artifact(quarantine / "movie.mkv")
    assert is_quarantine_dir(quarantine.parent) and not is_quarantine_dir(quarantine)
    assert not is_codecshift_artifact(tmp_path / "movie.mkv")
    assert not is_codecshift_artifact(tmp_path / ".codecshift.mkv")
    assert find_artifacts(tmp_path) == [temp]
    assert is_disposable(temp) and is_disposable(partial_path_for(tmp_path / "b.mkv", "job1-a1"))
    assert not is_disposable(hold_path_for(tmp_path / "movie.mkv", "job1-a1"))
    assert not is_disposable(journal_path_for(tmp_path / "movie.mkv", "job1-a1"))
    assert not is_disposable(tmp_path / "movie.mkv")
    assert list(iter_media_files([tmp_path])) == [tmp_path / "movie.mkv"]
