"""Path mapping: prefixes, precedence, component boundaries, Windows paths, validation, messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from codecshift.config import load_settings
from codecshift.pathmap import (
    MappedPath,
    PathMapping,
    PathMappingError,
    describe_unreachable,
    mappings_to_json,
    parent_folder,
    parse_node_overrides,
    to_local,
    to_source,
    validate_mappings,
)

MAPPINGS = [
    {"from": "/data", "to": "/mnt/nas", "node": None},
    {"from": "/data/movies", "to": "/mnt/nas/films", "node": None},
    {"from": "/data/movies", "to": "/Volumes/movies", "node": "mac"},
]


def test_longest_matching_prefix_wins() -> None:
    assert to_local("/data/movies/A/A.mkv", MAPPINGS).path == "/mnt/nas/films/A/A.mkv"
    assert to_local("/data/tv/S/e.mkv", MAPPINGS).path == "/mnt/nas/tv/S/e.mkv"


def test_prefix_matches_whole_components_only() -> None:
    mapped = to_local("/data/movies2/B.mkv", [{"from": "/data/movies", "to": "/mnt/m", "node": None}])
    assert mapped == MappedPath("/data/movies2/B.mkv", None)
    assert to_local("/data/movies", MAPPINGS).path == "/mnt/nas/films"


def test_unmapped_path_is_returned_unchanged() -> None:
    assert to_local("/srv/other/x.mkv", MAPPINGS) == MappedPath("/srv/other/x.mkv", None)
    assert to_local("/srv/x.mkv", []) == MappedPath("/srv/x.mkv", None)


def test_node_mapping_overrides_defaults_for_that_node_only() -> None:
    mapped = to_local("/data/movies/A.mkv", MAPPINGS, node="mac")
    assert mapped.path == "/Volumes/movies/A.mkv"
    assert mapped.mapping_used == PathMapping("/data/movies", "/Volumes/movies", "mac")
    # Other folders still use the defaults on that node; other nodes never see its mapping.
    assert to_local("/data/tv/e.mkv", MAPPINGS, node="mac").path == "/mnt/nas/tv/e.mkv"
    assert to_local("/data/movies/A.mkv", MAPPINGS, node="linux").path == "/mnt/nas/films/A.mkv"


def test_node_tier_wins_even_with_a_shorter_prefix() -> None:
    """A node that mounts the whole share elsewhere must not fall back to a longer default."""
    mappings = [*MAPPINGS, {"from": "/data", "to": "/srv/share", "node": "box"}]
    assert to_local("/data/movies/A.mkv", mappings, node="box").path == "/srv/share/movies/A.mkv"


def test_node_environment_overrides_both() -> None:
    settings = load_settings({"CODECSHIFT_PATH_MAPPINGS": "/data/movies=/media/m, /data=/media/all"})
    overrides = parse_node_overrides(settings.parsed_path_mappings())
    mapped = to_local("/data/movies/A.mkv", MAPPINGS, node="mac", node_overrides=overrides)
    assert mapped.path == "/media/m/A.mkv"
    assert mapped.mapping_used is not None and mapped.mapping_used.origin == "node-env"
    tv = to_local("/data/tv/e.mkv", MAPPINGS, node="mac", node_overrides=overrides)
    assert tv.path == "/media/all/tv/e.mkv"
    # Raw pairs work too.
    assert to_local("/data/x", [], node_overrides=[("/data", "/d")]).path == "/d/x"


def test_to_source_reverses_to_local() -> None:
    for node in (None, "mac", "linux"):
        for path in ("/data/movies/A/A.mkv", "/data/tv/S/e.mkv"):
            local = to_local(path, MAPPINGS, node=node).path
            assert to_source(local, MAPPINGS, node=node).path == path
    assert to_source("/elsewhere/x.mkv", MAPPINGS) == MappedPath("/elsewhere/x.mkv", None)


def test_trailing_slashes_and_root_mapping() -> None:
    slashes = [{"from": "/data/", "to": "/mnt/", "node": None}]
    assert to_local("/data/movies/A.mkv", slashes).path == "/mnt/movies/A.mkv"
    root = [{"from": "/", "to": "/host", "node": None}, {"from": "/data", "to": "/d", "node": None}]
    assert to_local("/x/y.mkv", root).path == "/host/x/y.mkv"
    assert to_local("/data/y.mkv", root).path == "/d/y.mkv"
    assert to_local("/data//movies/", slashes).path == "/mnt/movies"


def test_windows_plex_paths_map_to_posix_and_back() -> None:
    mappings = validate_mappings([{"from": "D:\\Media\\Movies", "to": "/mnt/movies"},
                                  {"from": "\\\\nas\\tv", "to": "/mnt/tv"}])
    assert to_local("D:\\Media\\Movies\\A (2001)\\A.mkv", mappings).path == "/mnt/movies/A (2001)/A.mkv"
    # Windows paths compare without case and with either separator.
    assert to_local("d:/media/movies/B.mkv", mappings).path == "/mnt/movies/B.mkv"
    assert to_local("\\\\nas\\tv\\Show\\e.mkv", mappings).path == "/mnt/tv/Show/e.mkv"
    assert to_local("D:\\Media\\Movies2\\C.mkv", mappings).mapping_used is None
    assert to_source("/mnt/movies/A (2001)/A.mkv", mappings).path == "D:\\Media\\Movies\\A (2001)\\A.mkv"


def test_parent_folder() -> None:
    assert parent_folder("/data/movies/A (2001)/A.mkv") == "/data/movies/A (2001)"
    assert parent_folder("/A.mkv") == "/"
    assert parent_folder("D:\\Movies\\A\\A.mkv") == "D:\\Movies\\A"
    assert parent_folder("D:\\A.mkv") == "D:\\"


def test_validation_accepts_and_normalises() -> None:
    mappings = validate_mappings([{"from": "/data/movies/", "to": "/mnt//nas/movies", "node": " mac "},
                                  {"from": "/data/movies", "to": "/mnt/nas/movies"}])
    assert mappings == [PathMapping("/data/movies", "/mnt/nas/movies", "mac"),
                        PathMapping("/data/movies", "/mnt/nas/movies", None)]
    assert mappings_to_json(mappings)[0] == {"from": "/data/movies", "to": "/mnt/nas/movies", "node": "mac"}
    assert validate_mappings(None) == []
    assert validate_mappings([]) == []


@pytest.mark.parametrize(("raw", "message"), [
    ("/data=/mnt", "must be a list"),
    ([["/data", "/mnt"]], "mapping 1: must be an object"),
    ([{"from": "/a", "to": "/b"}, {"from": "data/tv", "to": "/mnt/tv"}],
     "mapping 2 ('data/tv' -> '/mnt/tv'): 'from' must be an absolute path"),
    ([{"from": "/a", "to": ""}], "mapping 1 ('/a' -> ''): 'to' must be a non-empty path"),
    ([{"from": "/a", "to": 5}], "'to' must be a non-empty path"),
    ([{"from": "/a/../b", "to": "/c"}], "'from' must not contain '..'"),
    ([{"from": "/a", "to": "/b", "node": 3}], "'node' must be a node name or null"),
    ([{"from": "/a", "to": "/b", "nodes": "x"}], "unknown field(s) nodes"),
    ([{"from": "/a", "to": "/b"}, {"from": "/a/", "to": "/c"}],
     "mapping 2 ('/a/' -> '/c'): duplicates mapping 1 (same 'from' for every node)"),
    ([{"from": "/a", "to": "/b", "node": "n"}, {"from": "/a", "to": "/c", "node": "n"}],
     "duplicates mapping 1 (same 'from' for node 'n')"),
    ([{"from": "C:\\Films", "to": "/b"}, {"from": "c:/films", "to": "/c"}], "duplicates mapping 1"),
])
def test_validation_names_the_bad_entry(raw: object, message: str) -> None:
    with pytest.raises(PathMappingError) as info:
        validate_mappings(raw)
    assert message in str(info.value)


def test_node_environment_pairs_are_validated() -> None:
    settings = load_settings({"CODECSHIFT_PATH_MAPPINGS": "/data=/mnt,relative"})
    with pytest.raises(PathMappingError, match=r"CODECSHIFT_PATH_MAPPINGS entry 2 \(relative=\)"):
        parse_node_overrides(settings.parsed_path_mappings())


def test_unreachable_message_names_the_mapping_to_fix() -> None:
    mapped = to_local("/data/movies/A.mkv", MAPPINGS)
    message = describe_unreachable("/data/movies/A.mkv", mapped, node="node-b", library="Movies")
    assert message == ("/mnt/nas/films/A.mkv (library path /data/movies/A.mkv) not found on node node-b; "
                       "mapping /data/movies -> /mnt/nas/films (library 'Movies') may need fixing")
    own = to_local("/data/movies/A.mkv", MAPPINGS, node="mac")
    assert "mapping /data/movies -> /Volumes/movies (library 'Movies', node mac) may need fixing" in \
        describe_unreachable("/data/movies/A.mkv", own, node="mac", library="Movies")
    env = to_local("/data/movies/A.mkv", [], node_overrides=[("/data", "/d")])
    assert "(CODECSHIFT_PATH_MAPPINGS on node n1) may need fixing" in \
        describe_unreachable("/data/movies/A.mkv", env, node="n1")
    none = to_local("/srv/x.mkv", MAPPINGS)
    assert describe_unreachable("/srv/x.mkv", none, node="n1", library="Movies") == (
        "/srv/x.mkv not found on node n1; no path mapping applies (library 'Movies'): add one if node n1 "
        "sees this folder under another path")


def test_mapped_paths_reach_real_files(tmp_path: Path) -> None:
    """What a node does: map the library path, look on its disk, report what to fix when absent."""
    share = tmp_path / "nas" / "movies"
    (share / "A (2001)").mkdir(parents=True)
    (share / "A (2001)" / "A.mkv").write_bytes(b"x")
    mappings = validate_mappings([{"from": "/data/movies", "to": str(share)}])
    found = to_local("/data/movies/A (2001)/A.mkv", mappings)
    assert Path(found.path).is_file()
    missing = to_local("/data/movies/B (2002)/B.mkv", mappings)
    assert not Path(missing.path).exists()
    assert f"mapping /data/movies -> {share}" in describe_unreachable("/data/movies/B (2002)/B.mkv", missing,
                                                                      node="n1", library="Movies")
