"""A frame written onto a full disk: ``write_frame`` either writes it whole or leaves nothing (and says why).

OpenEXR's writer can lose the end of a file on a full disk and still report success (seen with OpenImageIO
3.2: a half-float EXR cut at 8192 bytes, ``write_image`` and ``close`` both true); the frame must not take
its name then.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from farm_plugin.frames import image_io
from farm_plugin.frames.errors import PlateError
from farm_plugin.frames.image_io import read_pixels, write_frame
from flame_submitter.cli.demo_plate import write_demo_plate

REPO = Path(__file__).resolve().parents[3]


def test_a_file_cut_short_without_an_error_does_not_become_the_frame(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "o.1001.exr"
    write_frame(target, np.full((16, 16, 3), 0.5, np.float32))
    before = target.read_bytes()
    real_write = image_io._write_images

    def write_then_lose_the_end(temp, target, format_name, images):  # what a full disk did to OpenEXR
        real_write(temp, target, format_name, images)
        temp.write_bytes(temp.read_bytes()[:300])

    monkeypatch.setattr(image_io, "_write_images", write_then_lose_the_end)
    with pytest.raises(PlateError) as raised:
        write_frame(target, np.full((16, 16, 3), 0.25, np.float32))
    assert str(raised.value) == (f"cannot write '{target}': the file came out incomplete, so the disk (or your quota) "
                                 "is probably full: free some space, or write elsewhere")
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary file left
    assert target.read_bytes() == before  # the frame that was there is untouched


WRITE_UNDER_A_LIMIT = """
import resource, signal, sys
from farm_plugin.frames.errors import PlateError
from farm_plugin.frames.image_io import probe, read_pixels, write_frame
source, target, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
pixels, like = 1.0 - read_pixels(source), probe(source)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    write_frame(target, pixels, like=like)
except PlateError as exc:
    print(exc)
"""


@pytest.mark.parametrize("limit_bytes", [4096, 8192, 8704, 9216])
def test_a_full_disk_leaves_a_whole_frame_or_none(tmp_path: Path, limit_bytes: int) -> None:
    """Each limit cuts the ~10 KB frame somewhere else: wherever, what is left is whole or nothing."""
    write_demo_plate(tmp_path / "plate", frame_count=3, width=256, height=256)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "o.1003.exr"
    result = subprocess.run([sys.executable, "-c", WRITE_UNDER_A_LIMIT, str(tmp_path / "plate" / "plate.1003.exr"),
                             str(target), str(limit_bytes)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    if target.exists():
        assert result.stdout == ""
        read_pixels(target)
        assert [p.name for p in out.iterdir()] == [target.name]
    else:
        assert result.stdout.startswith(f"cannot write '{target}': ")
        assert list(out.iterdir()) == []
