"""``comfyfarm workflows`` and ``comfyfarm doctor``, run in-process through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from flame_submitter.cli import main

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
REFERENCE = ("blur", "invert", "sequence_invert")


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMFYFARM_CONFIG", raising=False)
    monkeypatch.delenv("COMFYFARM_STUDIO_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))


def comfyfarm(capsys: pytest.CaptureFixture, *args: str) -> Tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def blocks(out: str) -> Dict[str, List[str]]:
    """Doctor output by package: the package's first line's status and its indented lines."""
    found: Dict[str, List[str]] = {}
    current = ""
    for line in out.splitlines():
        if line and not line.startswith(" "):
            current, _, status = line.partition(": ")
            found[current] = [status]
        else:
            found[current].append(line)
    return found


def node(inputs: Dict[str, Any], outputs=("IMAGE",), output_node: bool = False) -> Dict[str, Any]:
    return {"input": {"required": inputs}, "output": list(outputs), "output_node": output_node}


# -- comfyfarm workflows ----------------------------------------------------------------------------

def test_workflows_lists_every_package_with_what_it_needs(capsys) -> None:
    code, out, err = comfyfarm(capsys, "workflows")
    assert code == 0
    assert "16 workflow package(s)" in err
    listing = out.split("\n\n")
    assert len(listing) == 16
    assert (
        "rife_frame_interpolation: RIFE 2x frame interpolation\n"
        "  category: Temporal    mode: sequence (24-frame windows, 0 handle frames, 2x frames)    template: default\n"
        "  packs: Fannovel16/ComfyUI-Frame-Interpolation\n"
        "  models:\n"
        "    rife49.pth (ComfyUI/custom_nodes/ComfyUI-Frame-Interpolation/ckpts/rife)"
    ) in listing
    assert (
        "invert: Invert\n"
        "  category: Utility    mode: per_frame    template: default\n"
        "  packs: none (core ComfyUI)\n"
        "  models: none"
    ) in listing
    flux = next(block for block in listing if block.startswith("flux_tiled_upscale:"))
    assert "template: heavy" in flux
    assert "    flux1-dev.safetensors (ComfyUI/models/diffusion_models)" in flux.splitlines()
    assert "  packs: ssitu/ComfyUI_UltimateSDUpscale" in flux.splitlines()


def test_workflows_json_is_machine_readable(capsys) -> None:
    code, out, _ = comfyfarm(capsys, "workflows", "--json")
    assert code == 0
    records = {record["name"]: record for record in json.loads(out)}
    assert len(records) == 16
    toon = records["toonyou_style"]
    assert (toon["category"], toon["mode"], toon["template"]) == ("Temporal", "sequence", "heavy")
    assert toon["sequence"] == {"context_frames": 24, "overlap_frames": 4, "ratio": 1.0, "blend": "crossfade",
                                "oom_context_frames": None}
    assert toon["packs"] == ["Kosinkadink/ComfyUI-AnimateDiff-Evolved", "Fannovel16/comfyui_controlnet_aux"]
    assert {"name": "v3_sd15_mm.ckpt", "folder": "animatediff_models",
            "location": "ComfyUI/models/animatediff_models"} in toon["models"]
    assert "strength" in toon["parameters"]


def test_a_studio_folder_comes_before_the_bundled_packages(capsys, tmp_path: Path) -> None:
    studio = tmp_path / "studio"
    shutil.copytree(WORKFLOWS / "blur", studio / "blur")
    manifest = yaml.safe_load((studio / "blur" / "workflow.yaml").read_text())
    manifest["title"] = "Studio blur"
    (studio / "blur" / "workflow.yaml").write_text(yaml.safe_dump(manifest))
    code, out, _ = comfyfarm(capsys, "workflows", "--dir", str(studio))
    assert code == 0
    assert "blur: Studio blur" in out.splitlines()
    assert "blur: Gaussian blur" not in out.splitlines()


def test_a_missing_folder_is_a_usage_error(capsys, tmp_path: Path) -> None:
    code, _, err = comfyfarm(capsys, "workflows", "--dir", str(tmp_path / "nope"))
    assert code == 2
    assert f"comfyfarm workflows: --dir {tmp_path / 'nope'}: no such folder" in err


# -- comfyfarm doctor against saved answers ---------------------------------------------------------

CORE = {
    "LoadImage": node({"image": [["frame.png"]]}, ("IMAGE", "MASK")),
    "SaveImage": node({"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}, (), output_node=True),
    "ImageBlend": node({"image1": ["IMAGE"], "image2": ["IMAGE"], "blend_factor": ["FLOAT", {}],
                        "blend_mode": [["normal", "multiply", "screen", "overlay", "soft_light", "difference"]]}),
}


def propost(luts) -> Dict[str, Any]:
    return {
        "ProPostApplyLUT": node({"image": ["IMAGE"], "lut_name": [list(luts)], "strength": ["FLOAT", {}],
                                 "log": ["BOOLEAN", {}]}),
        "ProPostVignette": node({"image": ["IMAGE"], "intensity": ["FLOAT", {}], "center_x": ["FLOAT", {}],
                                 "center_y": ["FLOAT", {}]}),
    }


def saved_answer(tmp_path: Path, name: str, *parts: Dict[str, Any]) -> Path:
    merged: Dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(merged))
    return path


def test_doctor_says_ok_when_the_pack_and_the_model_are_there(capsys, tmp_path: Path) -> None:
    answer = saved_answer(tmp_path, "worker", CORE, propost(["film_look.cube", "other.cube"]))
    code, out, err = comfyfarm(capsys, "doctor", "film_look_lut", "--object-info", str(answer))
    assert code == 0
    assert out == "film_look_lut: OK\n"
    assert f"1 package(s) checked against {answer} (5 node classes): 1 OK, 0 cannot run" in err


def test_doctor_names_the_missing_model_and_its_folder(capsys, tmp_path: Path) -> None:
    answer = saved_answer(tmp_path, "worker", CORE, propost(["other.cube"]))
    code, out, _ = comfyfarm(capsys, "doctor", "film_look_lut", "--object-info", str(answer))
    assert code == 1
    assert out.splitlines() == [
        "film_look_lut: CANNOT RUN",
        "  missing model: film_look.cube (node 2 ProPostApplyLUT, input 'lut_name') -> put it in ComfyUI/models/luts",
    ]


def test_doctor_names_the_missing_pack_and_classes(capsys, tmp_path: Path) -> None:
    answer = saved_answer(tmp_path, "core-only", CORE)
    code, out, _ = comfyfarm(capsys, "doctor", "film_look_lut", "invert", "--object-info", str(answer))
    assert code == 1
    assert out.splitlines() == [
        "film_look_lut: CANNOT RUN",
        "  missing nodes from digitaljohn/comfyui-propost: ProPostApplyLUT, ProPostVignette",
        "    -> install digitaljohn/comfyui-propost in ComfyUI/custom_nodes "
        "(git clone https://github.com/digitaljohn/comfyui-propost)",
        "  model not checked (its node is missing): film_look.cube -> ComfyUI/models/luts",
        "invert: CANNOT RUN",
        "  missing core nodes: ImageInvert",
        "    -> a core ComfyUI node: update ComfyUI, or look for an IMPORT FAILED line in its start-up log",
    ]


def test_doctor_needs_a_comfyui_to_check_workflows(capsys) -> None:
    # Without a ComfyUI, `comfyfarm doctor` checks the installation (tests/install); naming packages without
    # a ComfyUI to check them against is a usage error.
    code, out, err = comfyfarm(capsys, "doctor", "film_look_lut")
    assert code == 2 and out == ""
    assert err == ("comfyfarm doctor: checking workflows needs a ComfyUI: pass --comfyui-url URL or --object-info "
                   "FILE|DIR (or --role worker, which starts one)\n")


def test_doctor_refuses_an_unknown_package(capsys, tmp_path: Path) -> None:
    answer = saved_answer(tmp_path, "worker", CORE)
    code, _, err = comfyfarm(capsys, "doctor", "no_such_workflow", "--object-info", str(answer))
    assert code == 2
    assert "comfyfarm doctor: no workflow 'no_such_workflow'" in err


def test_doctor_reports_an_unreachable_comfyui_as_a_usage_error(capsys) -> None:
    code, out, err = comfyfarm(capsys, "doctor", "--comfyui-url", "http://127.0.0.1:9")
    assert code == 2 and out == ""
    assert "ComfyUI is not reachable at http://127.0.0.1:9 (connection refused): start it" in err


# -- comfyfarm doctor against a live (core-only) ComfyUI: the test double ---------------------------

def test_doctor_against_a_core_only_comfyui(capsys, fake_comfyui_factory) -> None:
    core_only = fake_comfyui_factory(extra_args=["--disable-all-custom-nodes"])
    code, out, err = comfyfarm(capsys, "doctor", "--comfyui-url", core_only.url)
    assert code == 1
    found = blocks(out)
    assert set(found) == {path.parent.name for path in WORKFLOWS.glob("*/workflow.yaml")}
    for name in REFERENCE:
        assert found[name] == ["OK"], name
    expected_packs = {
        "temporal_coherence_animatediff": ["Kosinkadink/ComfyUI-AnimateDiff-Evolved"],
        "rife_frame_interpolation": ["Fannovel16/ComfyUI-Frame-Interpolation"],
        "film_look_lut": ["digitaljohn/comfyui-propost"],
        "advanced_chroma_key": ["GeekyGhost/ComfyUI-GeekyRemB"],
        "depth_normal_ao_maps": ["kijai/ComfyUI-DepthAnythingV2", "Fannovel16/comfyui_controlnet_aux",
                                 "cubiq/ComfyUI_essentials"],
        "flux_tiled_upscale": ["ssitu/ComfyUI_UltimateSDUpscale"],
        "inspyrenet_matte": ["john-mnz/ComfyUI-Inspyrenet-Rembg"],
        "rembg_matte": ["cubiq/ComfyUI_essentials"],
        "matte_depth_normal": ["john-mnz/ComfyUI-Inspyrenet-Rembg", "Fannovel16/comfyui_controlnet_aux",
                               "cubiq/ComfyUI_essentials"],
        "toonyou_style": ["Kosinkadink/ComfyUI-AnimateDiff-Evolved", "Fannovel16/comfyui_controlnet_aux"],
        "clearreality_upscale_4x": [],
        "set_extension_water_splash": [],
        "dsine_normal_refine": ["Fannovel16/comfyui_controlnet_aux", "cubiq/ComfyUI_essentials"],
    }
    for name, packs in expected_packs.items():
        lines = found[name]
        assert lines[0] == "CANNOT RUN", name
        named = [line.split(": ")[0].replace("  missing nodes from ", "") for line in lines
                 if line.startswith("  missing nodes from ")]
        assert named == packs, name
    # The double has only ten core classes: the rest of core is named as core, with its hint.
    assert "  missing core nodes: UpscaleModelLoader, ImageUpscaleWithModel" in found["clearreality_upscale_4x"]
    assert any("RIFE VFI" in line for line in found["rife_frame_interpolation"])
    assert "16 package(s) checked against ComfyUI at " in err and ": 3 OK, 13 cannot run" in err


def test_doctor_of_the_reference_packages_passes_on_a_core_only_comfyui(capsys, fake_comfyui) -> None:
    code, out, _ = comfyfarm(capsys, "doctor", *REFERENCE, "--comfyui-url", fake_comfyui.url)
    assert code == 0
    assert out.splitlines() == [f"{name}: OK" for name in REFERENCE]
