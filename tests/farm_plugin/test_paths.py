from __future__ import annotations

import pytest

from farm_plugin.paths import PathMapping, PathMappingError, is_mapped, map_path, under_any

MAPPINGS = (
    PathMapping.from_dict({"linux": "/mnt/projects", "macos": "/Volumes/projects", "windows": "P:\\"}),
    PathMapping.from_dict({"linux": "/mnt/projects/sh010", "macos": "/Volumes/sh010"}),
)


@pytest.mark.parametrize(
    ("path", "source", "target", "expected"),
    [
        ("/Volumes/projects/job/plate.####.exr", "macos", "linux", "/mnt/projects/job/plate.####.exr"),
        ("/mnt/projects/job/plate.####.exr", "linux", "macos", "/Volumes/projects/job/plate.####.exr"),
        ("/mnt/projects/job/out", "linux", "windows", "P:\\job\\out"),
        ("p:\\job\\out", "windows", "linux", "/mnt/projects/job/out"),
        ("/Volumes/sh010/comp", "macos", "linux", "/mnt/projects/sh010/comp"),  # the longest prefix wins
        ("/mnt/projects/sh010/comp", "linux", "macos", "/Volumes/sh010/comp"),
        ("/Volumes/projectsX/a", "macos", "linux", "/Volumes/projectsX/a"),  # a prefix, not a string start
        ("/home/ann/plate.exr", "linux", "macos", "/home/ann/plate.exr"),  # unmapped: unchanged
    ],
)
def test_mapping_works_both_ways(path: str, source: str, target: str, expected: str) -> None:
    assert map_path(path, MAPPINGS, source_os=source, target_os=target) == expected


def test_mapped_and_shared_roots() -> None:
    assert is_mapped("/Volumes/projects/a", MAPPINGS, "macos")
    assert not is_mapped("/Users/ann/a", MAPPINGS, "macos")
    assert under_any("/mnt/show/a/b.exr", ["/mnt/show/"], "linux")
    assert not under_any("/mnt/shower/a", ["/mnt/show"], "linux")


def test_a_mapping_needs_two_systems() -> None:
    with pytest.raises(PathMappingError, match="name the same storage on at least two of linux, macos, windows"):
        PathMapping.from_dict({"linux": "/mnt/projects"})
    with pytest.raises(PathMappingError, match="unknown key\\(s\\) osx: use linux, macos and windows"):
        PathMapping.from_dict({"linux": "/mnt/projects", "osx": "/Volumes/p"})
