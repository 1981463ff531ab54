"""Packs that read their frames as 8-bit must see a plate's highlights clipped, not wrapped.

comfyfarm's float path hands a workflow the plate unclipped: a scene-linear highlight is above 1 in the sRGB
working space. ComfyUI_essentials' ImageRemoveBackground+ (torchvision's ToPILImage) and comfyui_controlnet_aux's
preprocessors (``np.asarray(image * 255, dtype=np.uint8)``) turn 1.18 into 50, a dark pixel, and -0.1 into 231.
With any weights, stand-ins included, the result on the plate must then equal the result on the plate
clipped to 0..1: what the pack saw on the 8-bit path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
import pytest

from tests.real_packs.plates import clipped_plate, run_package, subject_plate
from tests.real_packs.plugin import PacksComfyUI

CASES: Sequence[Tuple[str, Sequence[str], Sequence[str], str, int]] = [
    # package, models, settings, the pass (file stem) that comes from the 8-bit pack, its channel
    ("rembg_matte", ["isnet-general-use.onnx"], [], "o", 3),
    ("dsine_normal_refine", ["dsine.pt"], ["resolution=512", "iterations=3"], "o", 0),
    ("depth_normal_ao_maps", ["dsine.pt", "depth_anything_v2_vitl_fp32.safetensors"], [], "o_normals", 0),
    ("matte_depth_normal", ["dsine.pt", "depth_anything_v2_vitl.pth", "ckpt_base.pth"], [], "o_depth", 0),
]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize(("package", "models", "settings", "name", "channel"), CASES, ids=[c[0] for c in CASES])
def test_a_plate_highlight_reaches_the_pack_clipped_not_wrapped(
        packs_comfyui: PacksComfyUI, tmp_path: Path, package: str, models: Sequence[str], settings: Sequence[str],
        name: str, channel: int) -> None:
    packs_comfyui.require(package, models=models)
    plate = subject_plate(tmp_path / "plate", frames=1)
    clipped = clipped_plate(plate, tmp_path / "clipped")
    runs = [run_package(packs_comfyui, package, pattern, tmp_path / label, *settings)
            for label, pattern in (("as_is", plate), ("clipped", clipped))]
    for run in runs:
        assert run.result.returncode == 0, run.result.stderr
    as_is, reference = (run.frame(name, 1001)[..., channel] for run in runs)
    assert np.abs(as_is - reference).max() < 2e-3, f"{name}: differs by up to {np.abs(as_is - reference).max():.3f}"
