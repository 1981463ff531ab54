"""Stand-in weights for the real-pack tier: run in the Python of the packs' ComfyUI, never imported by pytest.

``python standin_weights.py KIND DESTINATION COMFYUI_DIR`` builds the model of KIND with the pack's own class
(random initialisation, a fixed seed) and saves it at DESTINATION the way the pack loads it, so that the pack's
real loading and inference code runs. The pictures these weights give mean nothing; their shapes, batches,
frame counts and value ranges are the pack's. Nothing is downloaded. KINDs:

- ``rife``: ComfyUI-Frame-Interpolation's ``IFNet`` (arch 4.7, what rife49.pth loads into), ``torch.save``'d
  state dict.
- ``dsine``: comfyui_controlnet_aux's ``DSINE`` (EfficientNet-B5 from timm, no pretrained download), saved as
  ``{"model": state_dict}`` as ``load_checkpoint`` reads it.
- ``aux_depth_anything_vitl``: comfyui_controlnet_aux's ``DepthAnythingV2`` (ViT-L config), state dict.
- ``kijai_depth_anything_vitl``: ComfyUI-DepthAnythingV2's ``DepthAnythingV2`` (ViT-L config), safetensors.
- ``inspyrenet_base``: transparent-background's ``InSPyReNet_SwinB`` (base mode), state dict; beside it the
  package's own ``config.yaml`` with the base checkpoint's md5 set to null, so that Remover takes the file
  instead of downloading the real one over it.
- ``rembg_isnet``: an ONNX graph with IS-Net's contract (input 1x3x1024x1024, output 1x1x1024x1024). rembg
  ships no model class, only ONNX files, so this is a small convolution network exported with torch.onnx.
- ``span_4x``: spandrel's ``SPAN`` (ClearReality V1's architecture) at 4x, state dict; checked by loading it
  through spandrel's ``ModelLoader`` (what ComfyUI's UpscaleModelLoader calls).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Dict

import torch

SEED = 19


def _pack(comfyui: Path, folder: str, *inner: str) -> None:
    """Put ComfyUI (on the CPU: model building needs no device) and a pack's folder, with optional source
    folders inside it, on sys.path, as ComfyUI would."""
    sys.path.insert(0, str(comfyui))
    from comfy.cli_args import args

    args.cpu = True
    root = comfyui / "custom_nodes" / folder
    for path in (root, *(root / part for part in inner)):
        sys.path.insert(0, str(path))


def rife(destination: Path, comfyui: Path) -> None:
    _pack(comfyui, "ComfyUI-Frame-Interpolation")
    from vfi_models.rife.rife_arch import IFNet

    torch.save(IFNet(arch_ver="4.7").state_dict(), destination)


def dsine(destination: Path, comfyui: Path) -> None:
    _pack(comfyui, "comfyui_controlnet_aux", "src")
    from custom_controlnet_aux.dsine.models.dsine_arch import DSINE

    torch.save({"model": DSINE().state_dict()}, destination)


def _initialised(model: torch.nn.Module) -> torch.nn.Module:
    """Random weights for every layer. ComfyUI's own layer classes (comfy.ops, which kijai's Depth Anything
    builds on) skip PyTorch's initialisation, leaving whatever memory held: run the base classes' own."""
    layers = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.LayerNorm, torch.nn.GroupNorm)
    for module in model.modules():
        base = next((layer for layer in layers if isinstance(module, layer)), None)
        if base is not None:
            base.reset_parameters(module)
        for name, parameter in module.named_parameters(recurse=False):
            if base is None:  # tokens, position embeddings, layer scales
                torch.nn.init.normal_(parameter, std=0.02)
            elif not torch.isfinite(parameter).all():
                raise SystemExit(f"{type(module).__name__}.{name} is not initialised")
    return model


def _depth_above_zero(model: torch.nn.Module) -> torch.nn.Module:
    """Depth Anything's head ends in a ReLU: with random weights its input is below 0 almost everywhere, the
    depth is 0 and the packs' per-frame normalisation (depth - min) / (max - min) gives NaN. Start the last
    convolution above 0 (small random weights, bias 1), so that the depth varies as a trained one does."""
    last = model.depth_head.scratch.output_conv2[2]
    torch.nn.init.normal_(last.weight, std=0.05)
    torch.nn.init.constant_(last.bias, 1.0)
    return model


def aux_depth_anything_vitl(destination: Path, comfyui: Path) -> None:
    _pack(comfyui, "comfyui_controlnet_aux", "src")
    from custom_controlnet_aux.depth_anything_v2.dpt import DepthAnythingV2

    model = DepthAnythingV2(encoder="vitl", features=256, out_channels=[256, 512, 1024, 1024])
    torch.save(_depth_above_zero(model).state_dict(), destination)


def kijai_depth_anything_vitl(destination: Path, comfyui: Path) -> None:
    _pack(comfyui, "ComfyUI-DepthAnythingV2")
    sys.path.insert(0, str(comfyui / "custom_nodes"))
    from safetensors.torch import save_file

    module = __import__("ComfyUI-DepthAnythingV2.depth_anything_v2.dpt", fromlist=["DepthAnythingV2"])
    model = module.DepthAnythingV2(encoder="vitl", features=256, out_channels=[256, 512, 1024, 1024])
    model = _depth_above_zero(_initialised(model))
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(destination))


def inspyrenet_base(destination: Path, comfyui: Path) -> None:
    import transparent_background
    import yaml
    from transparent_background.InSPyReNet import InSPyReNet_SwinB

    package_config = Path(transparent_background.__file__).parent / "config.yaml"
    config = yaml.safe_load(package_config.read_text())
    config["base"]["md5"] = None  # the stand-in is not the published file: Remover must not fetch that over it
    base = dict(config["base"])
    model = InSPyReNet_SwinB(depth=64, pretrained=False, threshold=None, **base)
    torch.save(model.state_dict(), destination)
    (destination.parent / "config.yaml").write_text(yaml.safe_dump(config))


def rembg_isnet(destination: Path, comfyui: Path) -> None:
    class IsNetContract(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 1, 3, padding=1))

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.body(image))

    torch.onnx.export(IsNetContract().eval(), (torch.rand(1, 3, 1024, 1024),), str(destination),
                      input_names=["input_image"], output_names=["output"], dynamo=False)


def span_4x(destination: Path, comfyui: Path) -> None:
    from spandrel import ModelLoader
    from spandrel.architectures.SPAN import SPAN

    state = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4).state_dict()
    loaded = ModelLoader().load_from_state_dict(state)
    if (loaded.architecture.id, loaded.scale) != ("SPAN", 4):
        raise SystemExit(f"spandrel reads the stand-in as {loaded.architecture.id} x{loaded.scale}, not SPAN x4")
    torch.save(state, destination)


KINDS: Dict[str, Callable[[Path, Path], None]] = {
    "rife": rife,
    "dsine": dsine,
    "aux_depth_anything_vitl": aux_depth_anything_vitl,
    "kijai_depth_anything_vitl": kijai_depth_anything_vitl,
    "inspyrenet_base": inspyrenet_base,
    "rembg_isnet": rembg_isnet,
    "span_4x": span_4x,
}


def main(argv: list) -> int:
    if len(argv) != 3 or argv[0] not in KINDS:
        print(f"usage: standin_weights.py {{{','.join(KINDS)}}} DESTINATION COMFYUI_DIR", file=sys.stderr)
        return 2
    kind, destination, comfyui = argv[0], Path(argv[1]), Path(argv[2])
    torch.manual_seed(SEED)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    KINDS[kind](partial, comfyui)
    partial.replace(destination)  # a file that exists is whole
    print(f"{kind}: wrote {destination} ({destination.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
