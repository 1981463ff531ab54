"""Unit cases for comfyfarm's frame nodes (farm_plugin/ComfyUINodes/comfyfarm_frames), run in ComfyUI's Python.

The nodes need torch, which the project's test venv does not have (and must not: it is ComfyUI's), so
``test_frame_nodes.py`` runs this file once in ComfyUI's Python::

    python frame_nodes_cases.py <the pack's folder> <a scratch folder>

It loads the pack as ComfyUI does (``spec_from_file_location`` on its ``__init__.py`` under a module name
made from its path), runs every ``case_*`` function in a scratch folder of its own, and prints one JSON line:
``{case name: null, or the failure's traceback}``. Standard library, NumPy and torch only.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np
import torch
from frame_plates import plate, write  # beside this file: the same plates as the tests in the venv

PACK: Any = None  # the loaded pack, set by main()
SCRATCH = Path()


def nodes() -> Any:
    return sys.modules[PACK.__name__ + ".nodes"]


def load(*paths: str) -> Any:
    return nodes().ComfyFarmLoadFrames().load_frames("\n".join(paths))


def save(images: torch.Tensor, mask: Any = None, **names: str) -> List[Dict[str, Any]]:
    arguments = {"directory": str(SCRATCH / "out"), "prefix": "shot", "pass_name": "rgba", **names}
    return nodes().ComfyFarmSaveFrames().save_frames(images, mask=mask, **arguments)["ui"]["comfyfarm_frames"]


def raises(message: str, call: Callable[[], Any]) -> None:
    try:
        call()
    except ValueError as exc:
        assert message in str(exc), f"{message!r} not in {str(exc)!r}"
        return
    raise AssertionError(f"no ValueError with {message!r}")


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# -- the cases ------------------------------------------------------------------------------------------------

def case_the_pack_loads_as_comfyui_loads_it() -> None:
    assert sorted(PACK.NODE_CLASS_MAPPINGS) == ["ComfyFarmLoadFrames", "ComfyFarmSaveFrames"]
    assert PACK.NODE_DISPLAY_NAME_MAPPINGS == {"ComfyFarmLoadFrames": "Load Frames (comfyfarm)",
                                               "ComfyFarmSaveFrames": "Save Frames (comfyfarm)"}
    assert PACK.__all__ == ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]


def case_an_rgba_frame_loads_as_image_and_one_minus_alpha() -> None:
    pixels = plate()
    images, masks = load(write(SCRATCH / "a.npy", pixels))
    assert images.dtype == torch.float32 and masks.dtype == torch.float32
    assert images.device.type == "cpu" and tuple(images.shape) == (1, 6, 8, 3) and tuple(masks.shape) == (1, 6, 8)
    assert same_bits(images[0].numpy(), pixels[..., :3])
    assert same_bits(masks[0].numpy(), 1.0 - pixels[..., 3])
    assert same_bits((1.0 - masks[0]).numpy(), pixels[..., 3])  # InvertMask gives the half-float alpha back


def case_an_rgb_frame_loads_with_a_zero_mask_of_its_size() -> None:
    pixels = plate(channels=3)
    images, masks = load(write(SCRATCH / "a.npy", pixels))
    assert same_bits(images[0].numpy(), pixels)
    assert tuple(masks.shape) == (1, 6, 8) and not masks.any()


def case_a_batch_keeps_its_order_and_ignores_blank_lines() -> None:
    frames = [plate(seed=seed) for seed in range(3)]
    paths = [write(SCRATCH / f"f{index}.npy", pixels) for index, pixels in zip((2, 0, 1), frames)]
    images, masks = nodes().ComfyFarmLoadFrames().load_frames(f"\n{paths[0]}\n\n  {paths[1]}  \n{paths[2]}\n")
    assert tuple(images.shape) == (3, 6, 8, 3)
    for index, pixels in enumerate(frames):
        assert same_bits(images[index].numpy(), pixels[..., :3])
        assert same_bits(masks[index].numpy(), 1.0 - pixels[..., 3])


def case_rgba_and_rgb_frames_mix_in_one_batch() -> None:
    rgba, rgb = plate(), plate(channels=3, seed=1)
    _, masks = load(write(SCRATCH / "a.npy", rgba), write(SCRATCH / "b.npy", rgb))
    assert same_bits(masks[0].numpy(), 1.0 - rgba[..., 3]) and not masks[1].any()


def case_the_saver_writes_rgb_without_a_mask() -> None:
    pixels = plate(channels=3)
    written = save(torch.from_numpy(pixels)[None])
    path = str(SCRATCH / "out" / "shot.rgba.00000.npy")
    assert written == [{"path": path, "pass": "rgba", "index": 0, "width": 8, "height": 6, "channels": 3}]
    assert same_bits(np.load(path), pixels)
    assert sorted(os.listdir(SCRATCH / "out")) == ["shot.rgba.00000.npy"]  # no temporary file left
    with open(path, "rb") as stream:
        assert np.lib.format.read_magic(stream) == (1, 0)
        assert np.lib.format.read_array_header_1_0(stream) == ((6, 8, 3), False, np.dtype("<f4"))


def case_the_saver_writes_the_mask_as_alpha_bit_for_bit() -> None:
    pixels = plate()
    images, masks = load(write(SCRATCH / "a.npy", pixels))
    written = save(images, 1.0 - masks, pass_name="matte_v2-b")
    assert [entry["channels"] for entry in written] == [4]
    assert same_bits(np.load(written[0]["path"]), pixels)
    assert written[0]["path"].endswith("/shot.matte_v2-b.00000.npy")


def case_one_mask_serves_every_image_and_a_2d_mask_is_one() -> None:
    images = torch.from_numpy(np.stack([plate(channels=3, seed=seed) for seed in range(3)]))
    alpha = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    for mask in (torch.from_numpy(alpha)[None], torch.from_numpy(alpha)):
        written = save(images, mask)
        assert [entry["index"] for entry in written] == [0, 1, 2]
        for index, entry in enumerate(written):
            frame = np.load(entry["path"])
            assert same_bits(frame[..., :3], images[index].numpy()) and same_bits(frame[..., 3], alpha)


def case_an_rgba_image_keeps_its_alpha_unless_a_mask_replaces_it() -> None:
    pixels = plate()
    (entry,) = save(torch.from_numpy(pixels)[None])
    assert same_bits(np.load(entry["path"]), pixels)
    (entry,) = save(torch.from_numpy(pixels)[None], torch.zeros((1, 6, 8)))
    frame = np.load(entry["path"])
    assert same_bits(frame[..., :3], pixels[..., :3]) and not frame[..., 3].any()


def case_half_and_strided_images_are_written_as_c_ordered_float32() -> None:
    pixels = plate(channels=3)
    half = torch.from_numpy(pixels).half()[None]
    (entry,) = save(half)
    assert same_bits(np.load(entry["path"]), half[0].float().numpy())
    strided = torch.from_numpy(np.ascontiguousarray(pixels.transpose(1, 0, 2))).permute(1, 0, 2)[None]
    assert not strided.is_contiguous()
    (entry,) = save(strided, prefix="strided")
    assert same_bits(np.load(entry["path"]), pixels)
    images, _ = load(entry["path"])  # and the loader takes it
    assert same_bits(images[0].numpy(), pixels)


def case_values_outside_0_1_are_not_clamped_anywhere() -> None:
    pixels = plate()
    pixels[0, 0, :3] = (-0.5, 4.0, 1e6)
    images, masks = load(write(SCRATCH / "a.npy", pixels))
    (entry,) = save(images, 1.0 - masks)
    assert same_bits(np.load(entry["path"]), pixels)


def case_a_mask_of_another_size_or_count_fails_naming_it() -> None:
    images = torch.zeros((2, 6, 8, 3))
    raises("mask is 4x3 but the images are 8x6", lambda: save(images, torch.zeros((1, 3, 4))))
    raises("mask has 3 masks for 2 images", lambda: save(images, torch.zeros((3, 6, 8))))
    raises("mask has the shape (1, 1, 6, 8)", lambda: save(images, torch.zeros((1, 1, 6, 8))))
    raises("images have the shape (6, 8, 3)", lambda: save(torch.zeros((6, 8, 3))))
    raises("images have the shape (1, 6, 8, 1)", lambda: save(torch.zeros((1, 6, 8, 1))))
    assert not (SCRATCH / "out").exists()  # refused before anything was written


def case_bad_names_fail_naming_them() -> None:
    images = torch.zeros((1, 2, 2, 3))
    raises("pass name 'de pth' is not letters, digits, _ and - only", lambda: save(images, pass_name="de pth"))
    raises("pass name '' is not", lambda: save(images, pass_name=""))
    raises("pass name 'a/b' is not", lambda: save(images, pass_name="a/b"))
    raises("prefix '../x' is not a file name's start", lambda: save(images, prefix="../x"))
    raises("prefix '.hidden' is not", lambda: save(images, prefix=".hidden"))
    raises("directory 'out' is not an absolute folder", lambda: save(images, directory="out"))


def case_a_failed_write_leaves_no_partial_file_and_the_old_one_whole() -> None:
    images = torch.from_numpy(plate(channels=3))[None]
    (entry,) = save(images)
    before = Path(entry["path"]).read_bytes()
    real_write_array = np.lib.format.write_array

    def fail_halfway(stream: Any, array: np.ndarray, **_options: Any) -> None:
        stream.write(b"\x93NUMPY partial")
        raise OSError(28, "No space left on device")

    np.lib.format.write_array = fail_halfway
    try:
        save(images * 2)
    except OSError as exc:
        assert exc.errno == 28
    else:
        raise AssertionError("the failed write did not raise")
    finally:
        np.lib.format.write_array = real_write_array
    assert Path(entry["path"]).read_bytes() == before
    assert sorted(os.listdir(SCRATCH / "out")) == ["shot.rgba.00000.npy"]


def case_validation_refuses_bad_frame_files_naming_them() -> None:
    loader = nodes().ComfyFarmLoadFrames
    good = write(SCRATCH / "good.npy", plate())

    def refused(frames: str, message: str) -> None:
        answer = loader.VALIDATE_INPUTS(frames=frames)
        assert isinstance(answer, str) and message in answer, (message, answer)
        raises(message, lambda: loader().load_frames(frames))  # the same when the node runs

    missing = str(SCRATCH / "missing.npy")
    refused(missing, f"frame file {missing} does not exist")
    refused("", "frames names no frame file")
    refused("relative/frame.npy", "frame file path 'relative/frame.npy' is not absolute")
    double = write(SCRATCH / "double.npy", plate().astype(np.float64))
    refused(double, f"frame file {double} holds <f8 pixels, not little-endian float32")
    big = write(SCRATCH / "big.npy", plate().astype(">f4"))
    refused(big, f"frame file {big} holds >f4 pixels")
    flat = write(SCRATCH / "flat.npy", plate()[..., 0])
    refused(flat, f"frame file {flat} has the shape (6, 8), not (height, width, 3)")
    two = write(SCRATCH / "two.npy", plate()[..., :2])
    refused(two, f"frame file {two} has the shape (6, 8, 2)")
    fortran = write(SCRATCH / "fortran.npy", np.asfortranarray(plate()))
    refused(fortran, f"frame file {fortran} is in Fortran order")
    cut = SCRATCH / "cut.npy"
    cut.write_bytes(Path(good).read_bytes()[:-4])
    refused(str(cut), f"frame file {cut} has {cut.stat().st_size} bytes where its header says")
    text = SCRATCH / "text.npy"
    text.write_text("not a frame")
    refused(str(text), f"frame file {text} is not a NumPy .npy file")
    small = write(SCRATCH / "small.npy", plate(4, 4))
    refused(f"{good}\n{small}", f"frame file {small} is 4x4 but {good} is 8x6")
    assert loader.VALIDATE_INPUTS(frames=f"{good}\n{good}") is True
    assert loader.VALIDATE_INPUTS(frames=None) is True  # linked: ComfyUI passes None at validation


def case_is_changed_follows_every_rewrite_of_a_frame() -> None:
    loader = nodes().ComfyFarmLoadFrames
    path = SCRATCH / "a.npy"
    write(path, plate())
    frames = f"{path}\n"
    first = loader.IS_CHANGED(frames=frames)
    assert loader.IS_CHANGED(frames=frames) == first  # untouched: ComfyUI may use its cache
    temporary = SCRATCH / ".a.tmp.npy"
    np.save(temporary, plate())  # the same size, at once: only the inode (and maybe mtime) tells
    os.replace(temporary, path)
    assert loader.IS_CHANGED(frames=frames) != first
    assert "missing" in loader.IS_CHANGED(frames=str(SCRATCH / "gone.npy"))
    assert math.isnan(loader.IS_CHANGED(frames=None))  # linked: ComfyUI passes None, so always run


def case_the_saver_always_runs() -> None:
    saver = nodes().ComfyFarmSaveFrames
    value = saver.IS_CHANGED(images=None, directory="/x", prefix="p", pass_name="rgba")
    assert math.isnan(value) and value != value


def case_the_definitions_follow_core_conventions() -> None:
    loader, saver = nodes().ComfyFarmLoadFrames, nodes().ComfyFarmSaveFrames
    assert loader.RETURN_TYPES == ("IMAGE", "MASK") and loader.FUNCTION == "load_frames"
    assert not getattr(loader, "OUTPUT_NODE", False) and loader.CATEGORY == saver.CATEGORY == "comfyfarm"
    assert saver.RETURN_TYPES == () and saver.OUTPUT_NODE is True and saver.FUNCTION == "save_frames"
    assert list(loader.INPUT_TYPES()["required"]) == ["frames"]
    assert list(saver.INPUT_TYPES()["required"]) == ["images", "directory", "prefix", "pass_name"]
    assert list(saver.INPUT_TYPES()["optional"]) == ["mask"]


# -- the runner -----------------------------------------------------------------------------------------------

def load_pack(folder: Path) -> Any:
    """As ComfyUI's ``load_custom_node`` does for a folder."""
    name = str(folder).replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: List[str]) -> None:
    global PACK, SCRATCH
    pack_folder, scratch = Path(argv[1]), Path(argv[2])
    PACK = load_pack(pack_folder)
    results: Dict[str, Any] = {}
    cases = {name: value for name, value in globals().items() if name.startswith("case_") and callable(value)}
    for name, case in cases.items():
        SCRATCH = scratch / name
        SCRATCH.mkdir(parents=True)
        try:
            case()
            results[name] = None
        except Exception:  # every failure is reported, with its traceback, by the pytest test of its name
            results[name] = traceback.format_exc()
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv)
