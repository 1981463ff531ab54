"""``comfyfarm run-local --exr-layers``: a several-pass workflow's passes as the layers of one EXR per frame, as a
user runs it, against the ComfyUI double with comfyfarm's frame nodes (full precision).

The three-pass package of test_run_local_passes.py with ``plate`` first: the first pass takes the plain R, G, B, A
(the plate's alpha with it), ``inverted`` and ``keyed`` (the plate with a matte as its alpha) are the layers
``inverted.*`` and ``keyed.*`` (farm_plugin/frames/layers.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from farm_plugin.frames.colour import ColourPolicy, to_working
from farm_plugin.frames.image_io import probe, read_pixels
from farm_plugin.jobrecord import read_job_record
from tests.farm_plugin.runner.conftest import expected_invert_float
from tests.farm_plugin.runner.test_exr_layers import layers_of, reorder_plate_first
from tests.flame_submitter.test_run_local import run_local, scene_linear_rgba_plate, write_config
from tests.flame_submitter.test_run_local_passes import FRAMES, HALF, passes_package

CHANNELS = ("R", "G", "B", "A", "inverted.R", "inverted.G", "inverted.B", "keyed.R", "keyed.G", "keyed.B", "keyed.A")


def test_every_pass_is_a_layer_of_one_exr_per_frame_and_the_summary_names_the_file_once(tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    out = tmp_path / "o"
    result = run_local(write_config(tmp_path), "--quiet", "--exr-layers",
                       "--workflow", str(reorder_plate_first(passes_package(tmp_path / "three"))),
                       "--input", plate, "--output", str(out / "o.####.exr"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"o.{frame}.exr" for frame in FRAMES]  # one file per frame
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"comfyfarm: 3 frame\(s\) written, 0 already there, in [\d.]+ s \([\d.]+ frames/s\); "
                        r"3 passes in one file:", lines[-2]), lines[-2]
    assert lines[-1] == f"  {out}/o.####.exr: passes plate, inverted, keyed as layers (3 frames)"
    for index, frame in enumerate(FRAMES):
        info = probe(out / f"o.{frame}.exr")
        assert (info.channel_names, info.pixel_type, info.timecode) == (CHANNELS, "half", f"01:00:00:{index:02d}")
        source = read_pixels(plate.replace("####", str(frame)))
        working = to_working(source, ColourPolicy.default_for(probe(plate.replace("####", str(frame)))))
        layers = layers_of(info.path)
        assert np.array_equal(layers[""], source)  # the plate pass, with the plate's alpha: R, G, B, A
        assert np.allclose(layers["inverted"], expected_invert_float(source[..., :3]), rtol=2 * HALF, atol=1e-3)
        assert np.array_equal(layers["keyed"][..., :3], source[..., :3])
        assert np.allclose(layers["keyed"][..., 3], working[..., 0], rtol=HALF, atol=1e-4)  # its matte, unclamped
    (record_path,) = (tmp_path / "scratch").rglob("job.json")
    record = read_job_record(record_path)
    assert (record.output.pattern, record.output.exr_layers) == (str(out / "o.####.exr"), True)


def test_exr_layers_with_a_tiff_output_is_refused_before_anything_starts(tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    output = tmp_path / "o" / "o.####.tif"
    result = run_local(write_config(tmp_path), "--exr-layers",
                       "--workflow", str(reorder_plate_first(passes_package(tmp_path / "three"))),
                       "--input", plate, "--output", str(output))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"comfyfarm run-local: output pattern '{output}': TIFF has no layers to hold the 3 passes of workflow three "
        "(plate, inverted, keyed) in one file: end it in .exr, or turn exr_layers off to write each pass as its own "
        "sequence")
    assert not (tmp_path / "o").exists()
    assert not list((tmp_path / "scratch").rglob("job.json"))  # nothing started: no job
