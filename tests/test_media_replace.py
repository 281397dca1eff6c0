"""The journaled swap: a process killed at every step, then recovered from the filesystem alone.

After recovery there is exactly one playable file at the expected path (the new one, or the
untouched original), never neither, never a stray copy; recovery is idempotent and works from
the dashboard's copy of the journal as well as from the file beside the media.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from codecshift.media.commands import build_command
from codecshift.media.faults import ENV, EXIT_CODE
from codecshift.media.journal import JournalError, new_journal, write_journal
from codecshift.media.probe import probe
from codecshift.media.replace import ReplaceError, keep_path_for, recover, recover_folder, replace_file
from codecshift.media.runner import run_ffmpeg
from codecshift.media.tempfiles import QUARANTINE_DIR, find_artifacts, journal_path_for, temp_path_for
from support.media import fast_settings, make_clip

ROOT = Path(__file__).resolve().parent.parent
TAG = "job7-a2"
CHILD = textwrap.dedent("""
    import json, os, shutil, sys
    from pathlib import Path
    from codecshift.media.journal import new_journal, write_journal
    from codecshift.media.replace import replace_file
    source, output, temp, final, keep, tag, dashboard = sys.argv[1:]
    stat = os.stat(source)
    journal = new_journal(Path(source), Path(temp), tag, source_size=stat.st_size, source_mtime_ns=stat.st_mtime_ns)
    write_journal(journal)
    shutil.copyfile(output, temp)  # the encode writes the temporary output after the journal exists

    def persist(record):
        with open(dashboard, "a") as handle:
            handle.write(json.dumps(record) + "\\n")

    outcome = replace_file(journal, final=Path(final), keep_path=Path(keep) if keep else None, persist=persist)
    print(outcome.action)
""")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An H.264 .mkv and .avi source and a real HEVC encode of the .mkv, all playable."""
    folder = tmp_path_factory.mktemp("replace-media")
    mkv = make_clip(folder / "source.mkv")
    avi = make_clip(folder / "source.avi", vcodec="mpeg4", audio_languages=())
    output = folder / "encoded.mkv"
    plan = build_command(probe(mkv), fast_settings(), "cpu", "hevc", output)
    assert run_ffmpeg(plan.args).ok
    return {"mkv": mkv, "avi": avi, "output": output}


@pytest.fixture
def shm_backup() -> Iterator[Path]:
    """A backup folder on another filesystem (tmpfs), so keeping the original is a copy."""
    folder = Path("/dev/shm") / f"codecshift-test-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def steps_of(mode: str) -> list[str]:
    last = "remove_original" if mode in ("remove", "new_extension") else "keep_original"
    points = ["journal:encoding"]
    for step in ("hold_original", "place_output", last):
        points += [f"journal:{step}", f"before:{step}", f"after:{step}"]
    if mode == "backup":
        points.insert(points.index(f"after:{last}"), "during:keep_original")
    return [*points, "journal:done", "before:done"]


CASES = [(mode, point) for mode in ("remove", "quarantine", "backup", "new_extension") for point in steps_of(mode)]
FORWARD_FROM = "after:place_output"


class Scene:
    """One library folder with a source and the verified output about to replace it."""

    def __init__(self, root: Path, media: dict[str, Path], mode: str, backup: Path | None) -> None:
        self.folder = root / "Films" / "Heat (1995)"
        self.folder.mkdir(parents=True)
        self.original = media["avi"] if mode == "new_extension" else media["mkv"]
        self.output = media["output"]
        self.source = self.folder / ("Heat (1995)" + self.original.suffix)
        shutil.copy2(self.original, self.source)
        self.final = self.source.with_suffix(".mkv")
        self.temp = temp_path_for(self.source, TAG, ".mkv")
        self.keep: Path | None = None
        if mode == "quarantine":
            self.keep = keep_path_for(self.source, TAG, "")
        elif mode == "backup":
            assert backup is not None
            self.keep = keep_path_for(self.source, TAG, str(backup))
        self.dashboard = root / "dashboard.jsonl"

    def crash_at(self, point: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, ENV: point}
        args = [str(self.source), str(self.output), str(self.temp), str(self.final), str(self.keep or ""), TAG,
                str(self.dashboard)]
        return subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=ROOT,
                              env=env, check=False)

    def dashboard_journal(self) -> dict | None:
        if not self.dashboard.exists():
            return None
        lines = self.dashboard.read_text().splitlines()
        return json.loads(lines[-1]) if lines else None

    def media_files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())

    def assert_clean_end(self, forward: bool) -> None:
        assert find_artifacts(self.folder) == [], "stray temporary files"
        assert not journal_path_for(self.source, TAG).exists()
        if forward:
            assert self.media_files() == [self.final]
            assert digest(self.final) == digest(self.output)
            assert probe(self.final).main_video.codec == "hevc"
            if self.keep is not None:
                assert digest(self.keep) == digest(self.original)
                assert [p for p in self.keep.parent.iterdir()] == [self.keep], "partial copy left behind"
        else:
            assert self.media_files() == [self.source]
            assert digest(self.source) == digest(self.original)
            assert probe(self.source).main_video is not None
            if self.keep is not None:
                assert not self.keep.exists()
            assert not (self.folder / QUARANTINE_DIR).exists()


@pytest.mark.parametrize(("mode", "point"), CASES)
def test_crash_at_every_step_then_recover_from_the_local_journal(tmp_path: Path, media: dict[str, Path],
                                                                shm_backup: Path, mode: str, point: str) -> None:
    scene = Scene(tmp_path, media, mode, shm_backup)
    crashed = scene.crash_at(point)
    assert crashed.returncode == EXIT_CODE, crashed.stderr
    forward = CASES.index((mode, point)) >= CASES.index((mode, FORWARD_FROM))
    outcomes = recover_folder(scene.folder)
    assert [o.action for o in outcomes] == ["rolled_forward" if forward else "rolled_back"]
    if point == "journal:encoding":  # died writing its first journal: no output was written yet
        assert outcomes[0].changed is False
    scene.assert_clean_end(forward)
    assert recover_folder(scene.folder) == []  # idempotent: nothing left to do
    remembered = scene.dashboard_journal()
    if remembered is not None:  # the control worker may replay the dashboard's copy later: harmless
        again = recover(remembered)
        assert again.action == ("rolled_forward" if forward else "rolled_back") and not again.changed
        assert again.path == str(scene.final if forward else scene.source)
    scene.assert_clean_end(forward)


@pytest.mark.parametrize("point", ["before:hold_original", "after:hold_original", "before:place_output",
                                   "after:place_output", "after:keep_original"])
def test_recover_from_the_dashboards_copy_when_the_local_journal_is_lost(tmp_path: Path, media: dict[str, Path],
                                                                        point: str) -> None:
    scene = Scene(tmp_path, media, "quarantine", None)
    assert scene.crash_at(point).returncode == EXIT_CODE
    journal_path_for(scene.source, TAG).unlink()
    remembered = scene.dashboard_journal()
    assert remembered is not None
    outcome = recover(remembered)
    forward = point in ("after:place_output", "after:keep_original")
    assert outcome.action == ("rolled_forward" if forward else "rolled_back")
    scene.assert_clean_end(forward)


def _ready(scene: Scene) -> dict:
    stat = scene.source.stat()
    journal = new_journal(scene.source, scene.temp, TAG, source_size=stat.st_size, source_mtime_ns=stat.st_mtime_ns)
    write_journal(journal)
    shutil.copyfile(scene.output, scene.temp)
    return journal


def test_replace_keeps_the_original_in_a_backup_on_another_filesystem(tmp_path: Path, media: dict[str, Path],
                                                                     shm_backup: Path) -> None:
    scene = Scene(tmp_path, media, "backup", shm_backup)
    records: list[str] = []
    outcome = replace_file(_ready(scene), final=scene.final, keep_path=scene.keep,
                           persist=lambda journal: records.append(journal["step"]))
    assert records == ["hold_original", "place_output", "keep_original", "done"]
    assert outcome.action == "rolled_forward" and outcome.kept_original == str(scene.keep)
    assert str(scene.keep).startswith(str(shm_backup)) and str(scene.keep).endswith("Films/Heat (1995)/Heat (1995).mkv")
    scene.assert_clean_end(forward=True)


def test_a_new_extension_needs_a_free_path(tmp_path: Path, media: dict[str, Path]) -> None:
    scene = Scene(tmp_path, media, "new_extension", None)
    scene.final.write_bytes(b"someone else's file")
    journal = _ready(scene)
    with pytest.raises(ReplaceError) as caught:
        replace_file(journal, final=scene.final, keep_path=None)
    assert caught.value.code == "path_taken" and "already taken" in caught.value.message
    assert digest(scene.source) == digest(scene.original) and scene.final.read_bytes() == b"someone else's file"


def test_source_changed_before_the_swap_is_kept(tmp_path: Path, media: dict[str, Path]) -> None:
    scene = Scene(tmp_path, media, "remove", None)
    journal = _ready(scene)
    with scene.source.open("ab") as handle:
        handle.write(b"appended by someone")
    changed = digest(scene.source)
    with pytest.raises(ReplaceError) as caught:
        replace_file(journal, final=scene.final, keep_path=None)
    assert caught.value.code == "source_changed"
    assert caught.value.outcome is not None and caught.value.outcome.action == "rolled_back"
    assert scene.media_files() == [scene.source] and digest(scene.source) == changed
    assert find_artifacts(scene.folder) == []


def test_a_journal_the_dashboard_refuses_stops_the_swap(tmp_path: Path, media: dict[str, Path]) -> None:
    scene = Scene(tmp_path, media, "remove", None)

    def refuse(journal: dict) -> None:
        raise ConnectionError("dashboard unreachable")

    with pytest.raises(ReplaceError) as caught:
        replace_file(_ready(scene), final=scene.final, keep_path=None, persist=refuse)
    assert "dashboard unreachable" in caught.value.message
    scene.assert_clean_end(forward=False)


def test_a_refusal_after_the_commit_point_still_ends_replaced(tmp_path: Path, media: dict[str, Path]) -> None:
    scene = Scene(tmp_path, media, "remove", None)

    def refuse_late(journal: dict) -> None:
        if journal["step"] == "remove_original":
            raise ConnectionError("dashboard unreachable")

    outcome = replace_file(_ready(scene), final=scene.final, keep_path=None, persist=refuse_late)
    assert outcome.action == "rolled_forward" and "hiccup" in outcome.message
    scene.assert_clean_end(forward=True)


def test_an_unwritable_keep_folder_fails_before_anything_moves(tmp_path: Path, media: dict[str, Path]) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    scene = Scene(tmp_path, media, "backup", backup)
    subprocess.run(["chattr", "+i", str(backup)], check=True)
    try:
        with pytest.raises(ReplaceError) as caught:
            replace_file(_ready(scene), final=scene.final, keep_path=scene.keep)
    finally:
        subprocess.run(["chattr", "-i", str(backup)], check=True)
    assert caught.value.code == "keep_unwritable"
    assert digest(scene.source) == digest(scene.original) and scene.temp.exists()


def test_recover_refuses_a_folder_it_cannot_see(tmp_path: Path) -> None:
    source = tmp_path / "elsewhere" / "a.mkv"
    journal = new_journal(source, temp_path_for(source, TAG, ".mkv"), TAG, source_size=1, source_mtime_ns=1)
    with pytest.raises(FileNotFoundError):
        recover(journal)


def test_recover_refuses_a_journal_naming_files_that_are_not_its_own(tmp_path: Path, media: dict[str, Path]) -> None:
    victim = tmp_path / "precious.db"
    victim.write_bytes(b"not media")
    source = tmp_path / "a.mkv"
    source.write_bytes(b"original")
    for key, value in (("temp", str(victim)), ("journal_file", str(victim)), ("hold", str(victim)),
                       ("final", str(tmp_path / "other.mkv")), ("source", str(tmp_path / "x" / ".." / "a.mkv"))):
        journal = new_journal(source, temp_path_for(source, TAG, ".mkv"), TAG, source_size=8, source_mtime_ns=1)
        journal[key] = value
        with pytest.raises(JournalError):
            recover(journal)
    assert victim.read_bytes() == b"not media" and source.read_bytes() == b"original"


def test_a_new_file_at_the_source_path_is_a_conflict_not_a_loss(tmp_path: Path, media: dict[str, Path]) -> None:
    scene = Scene(tmp_path, media, "remove", None)
    assert scene.crash_at("after:hold_original").returncode == EXIT_CODE
    scene.source.write_bytes(b"a new file someone copied in")
    [outcome] = recover_folder(scene.folder)
    assert outcome.action == "conflict" and "both are kept" in outcome.message
    held = Path(outcome.kept_original)
    assert digest(held) == digest(scene.original) and scene.source.read_bytes() == b"a new file someone copied in"


def test_live_and_foreign_journals_are_left_alone(tmp_path: Path, media: dict[str, Path]) -> None:
    scene = Scene(tmp_path, media, "remove", None)
    journal = _ready(scene)  # owned by this (live) test process
    assert [o.action for o in recover_folder(scene.folder)] == ["skipped_live"]
    journal["owner"]["host"] = "some-other-node"
    write_journal(journal)
    assert [o.message for o in recover_folder(scene.folder)] == ["owned by another host"]
    assert [o.action for o in recover_folder(scene.folder, include_foreign=True)] == ["rolled_back"]
    scene.assert_clean_end(forward=False)
