"""Start and stop the ComfyUI test double from tests.

    fake = start_fake_comfyui(tmp_path / "comfyui", faults={"node_delay_s": 0.05})
    ...  # talk to fake.url over HTTP and ws://…/ws, put files in fake.input_dir
    fake.set_faults(fail_node={"class_type": "ImageBlur", "exception_type": "RuntimeError", "message": "boom"})
    fake.stop()

The double is a real server process (``python -m tests.doubles.comfyui``) that follows ComfyUI 0.3.64:
its routes (also under /api), status codes and bodies, WebSocket messages (order, recipients, the
``feature_flags`` handshake, the silent take-over of a clientId), validation errors, caching, interrupt,
history and upload rules. Its nodes (LoadImage, ImageInvert, ImageBlur, ImageScale, ImageScaleBy,
ImageBatch, RepeatImageBatch, ImageFromBatch, SaveImage, PreviewImage, InvertMask; ``RIFE VFI`` of the pack
Fannovel16/ComfyUI-Frame-Interpolation; the test-only ``ComfyFarmTemporalMean``; comfyfarm's own
``ComfyFarmLoadFrames`` and ``ComfyFarmSaveFrames``) compute real pixels with numpy.

Custom nodes (custom_nodes.py), as ComfyUI 0.3.64 finds them: its ``custom_nodes`` folders are the
ComfyUI's own (``<root>/custom_nodes``, or ``<--base-directory>/custom_nodes``) plus every ``custom_nodes:``
entry of ``extra_model_paths.yaml`` in the double's folder and of each ``--extra-model-paths-config`` file
(read as utils/extra_config.py reads them: ``base_path``, ``is_default``, paths relative to the YAML's
folder, one path a line; "Adding extra search path custom_nodes <path>" is logged). ``RIFE VFI`` and
``ComfyFarmTemporalMean`` (folders ``ComfyUI-Frame-Interpolation`` and ``comfyfarm_test_double``) count as
installed in the ComfyUI's own folder; the frame nodes (folder ``comfyfarm_frames``, the pack
farm_plugin/ComfyUINodes/comfyfarm_frames whose ``__init__.py`` docstring is their contract) load only where
a custom_nodes folder holds a ``comfyfarm_frames`` folder with an ``__init__.py``:
``start_fake_comfyui(root, extra_args=comfyfarm_nodes_args(root / "nodes.yaml"))`` gives a double with them,
as comfyfarm starts its ComfyUIs. ``--disable-all-custom-nodes`` alone loads no custom node ("Skipping loading
of custom nodes"), leaving a core-only ComfyUI; with ``--whitelist-custom-nodes`` it skips each folder not
named ("Skipping <folder> due to disable_all_custom_nodes and whitelist_custom_nodes"). An extra-paths file
that cannot be read ends the start with ComfyUI's exception and status 1 (``FileNotFoundError: [Errno 2] No
such file or directory: '<path>'``), and so does a custom_nodes folder that does not exist, unless custom nodes
are off altogether.

The frame nodes read and write the pack's .npy float32 frame files byte for byte, with the pack's
``custom_validation_failed`` and ``execution_error`` texts (``ValueError``), its ``IS_CHANGED`` values (the
loader: path, size, mtime and inode of each file, NaN when ``frames`` is linked; the saver: NaN, so it runs
for every prompt) and its UI output ``{"comfyfarm_frames": [{"path", "pass", "index", "width", "height",
"channels"}]}``; tests/doubles/test_fake_comfyui_frame_nodes.py runs the same contract against a real
ComfyUI with the pack in the real tier.

Faults (env COMFYFARM_FAKE_FAULTS at start, or POST /__fake__/faults with the whole set; GET shows it):

* ``node_delay_s``: every executed (non-cached) node sleeps this long, in 10 ms slices that honour
  /interrupt (so an interrupt lands inside the node, like a node that reports progress);
* ``fail_node``: ``{"class_type" and/or "node_id", "exception_type": "RuntimeError", "message": "...",
  "times": N}`` (or a list of them): the matching node raises after its delay; ``exception_type`` may be a
  builtin name or a dotted name (``torch.OutOfMemoryError`` also gets ComfyUI's OOM tips); ``times``
  (optional) limits how often it fails, counted from when the fault set was installed;
* ``die_on_prompt``: N (1-based, counted since start): the process exits with os._exit(1) when the N-th
  prompt it executes reaches its first node (after that node's ``executing`` has been sent), with no
  WebSocket close frames;
* ``kill_on_prompt``: N: as ``die_on_prompt``, but the process kills itself with SIGKILL (what the Linux kernel's
  out-of-memory killer sends; see its mm/oom_kill.c), saying nothing;
* ``leak_mb_per_prompt``: each prompt allocates this much memory and never frees it (resident: it is
  written), as a ComfyUI that grows over a long API session does;
* ``startup_delay_s``: sleep (after printing the start-up lines and a line saying so) before listening;
* ``refuse_start``: print a traceback-like block ending with this text to stderr and exit 1 at once;
* ``no_gpu``: true: a machine whose torch has no CUDA (a CPU build): started without ``--cpu`` the double
  exits 1 with ComfyUI 0.3.64's own start-up traceback ending ``AssertionError: Torch not compiled with
  CUDA enabled``; the folder's ``torch`` stand-in (below) answers ``torch.cuda.is_available()`` False;
* ``gpu_count``: N: the machine has N GPUs (default 1), as the ``torch`` stand-in counts them.

A folder from ``make_fake_comfyui_dir`` also holds a ``torch`` stand-in package, found by a Python run
in that folder (``python -c ...`` with the folder as the working directory, as comfyfarm asks ComfyUI's
Python which GPUs torch sees): ``torch.cuda.is_available()`` is true with as many devices as
CUDA_VISIBLE_DEVICES lists (``gpu_count`` when it is unset; none when it is empty or -1), unless ``no_gpu``
is set in COMFYFARM_FAKE_FAULTS; ``torch.backends.mps`` and ``torch.xpu`` are never available.

GET /__fake__/stats gives ``prompts_executed`` (prompts the worker started), ``nodes_executed`` (node
functions that completed, cached nodes excluded), ``prompts_succeeded``, ``prompts_failed`` and
``prompts_interrupted``.

Where the double deliberately differs from real ComfyUI:

* only the node classes above exist (``/object_info`` lists just them, with the recorded definitions;
  ``ComfyFarmTemporalMean`` exists in no real ComfyUI: its definition is written by hand, and its output
  frame i is the mean of input frames i - radius .. i + radius, clipped to the batch);
* custom-node packs are names the double knows, not code it imports: a ``comfyfarm_frames`` folder gets the
  double's numpy frame nodes whatever its files say; any other folder or .py file in a custom_nodes folder
  fails to import ("Cannot import <path> module for custom nodes: ..." and "(IMPORT FAILED)" in the import
  times, which are always 0.0 seconds); the two bundled packs need no folder on disk; no prestartup scripts,
  no web extensions; custom_nodes is the only folder name of an extra-paths file the double uses (it has no
  model folders); start-up tracebacks name the double's files;
* ``RIFE VFI`` returns the pack's frame count and order ((N - 1) * multiplier + 1: each source frame
  unchanged, then its in-betweens; the last source frame once), but each in-between is a linear cross-fade
  of its two source frames instead of an optical-flow synthesis; it needs no model file;
* numerics: the torch upscale modes are reimplemented in numpy float32 (checked against torch 2.13: within
  1e-6, so at most one 8-bit level apart at truncation boundaries); ``lanczos`` reimplements Pillow's 8-bit
  fixed-point filter, exact when Pillow 13 runs its horizontal pass first (the double guesses Pillow's pass
  order from the sizes, right for ~96% of size pairs); ImageBlur uses the separable form of ComfyUI's
  gaussian kernel (within 2e-6 of torch's conv2d);
* images are read with OpenImageIO, limited to the formats PIL (and so LoadImage) can open: EXR, DPX, HDR,
  Cineon... fail with ``PIL.UnidentifiedImageError`` as in ComfyUI; float TIFFs fail the same way (PIL would
  open some); 16-bit RGB keeps the high byte and 16-bit grey saturates at 255, like PIL; multi-page TIFF,
  GIF and animated WebP frames become one batch; an animated PNG fails with NotImplementedError (ComfyUI
  splits its frames);
* SaveImage/PreviewImage write PNGs with their own encoder (same pixels and ``prompt``/extra_pnginfo text
  chunks, other compressed bytes); /view ``preview=`` and ``channel=`` re-encode with it or OIIO;
* ``current_inputs`` of execution_error show numpy's ``str()`` of an image, not torch's; tracebacks name
  the double's files; no binary preview frames and no ``progress`` messages (no node reports steps);
* /system_stats: ``pytorch_version`` says it is the double; without ``--cpu`` it reports one fake CUDA
  device named after CUDA_VISIBLE_DEVICES (``--cuda-device N`` sets it, as ComfyUI does);
* arguments without meaning here (precision, attention, TLS, --auto-launch, ...) are accepted and ignored
  (no TLS, no browser); /, /extensions, /embeddings, /models answer minimally; no /internal routes;
* the input, output and temp folders are created at start (ComfyUI creates only the default input one).
* ``--cache-none`` keeps no result from one prompt to the next and ``--cache-lru N`` keeps the N most
  recently used results (approximations of ComfyUI's dependency-aware and generation-based caches).

Kept on purpose because the real server does it (product code must cope): a socket that takes over a
clientId silently stops receiving once the replaced socket closes; an interrupt sent while idle is
forgotten when the next prompt starts; the classic cache keeps only the latest prompt's nodes; the
``is_changed`` hash LoadImage computes is written into the graph that SaveImage embeds in its PNGs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import requests

from . import FAULTS_ENV

REPO_ROOT = Path(__file__).resolve().parents[3]
COMFYFARM_NODES_DIR = REPO_ROOT / "farm_plugin" / "ComfyUINodes"  # the custom-nodes folder comfyfarm ships

_MAIN_PY = '''"""A stand-in for ComfyUI's main.py: runs comfyfarm's ComfyUI test double (tests/doubles/comfyui)."""
import os
import sys

sys.path.insert(0, {repo_root!r})

from tests.doubles.comfyui.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(base_dir=os.path.dirname(os.path.abspath(__file__))))
'''


_TORCH_STAND_IN = '''"""A stand-in for torch in a fake ComfyUI folder: what asking for the GPUs needs (harness.py)."""
import json
import os

__version__ = "2.13.0+double"


class _Cuda:
    @staticmethod
    def _devices():
        faults = json.loads(os.environ.get({faults_env!r}) or "{{}}")
        if faults.get("no_gpu"):
            return 0
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            return int(faults.get("gpu_count", 1))
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])

    def is_available(self):
        return self._devices() > 0

    def device_count(self):
        return self._devices()


class _Unavailable:
    def is_available(self):
        return False


class _Backends:
    mps = _Unavailable()


cuda = _Cuda()
backends = _Backends()
xpu = _Unavailable()
'''


def make_fake_comfyui_dir(path: Path) -> Path:
    """Create a directory that looks like a ComfyUI checkout: a `main.py` that runs this double
    (it inserts the repo root into sys.path and calls tests.doubles.comfyui.__main__.main()),
    plus empty input/ output/ temp/ folders. Returns path. Used as COMFYUI_DIR by lifecycle tests:
    the product runs `<python> main.py --listen 127.0.0.1 --port N ...` with cwd = that dir."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "main.py").write_text(_MAIN_PY.format(repo_root=str(REPO_ROOT)), encoding="utf-8")
    (path / "comfyui_version.py").write_text('__version__ = "0.3.64"\n', encoding="utf-8")
    (path / "torch").mkdir(exist_ok=True)
    (path / "torch" / "__init__.py").write_text(_TORCH_STAND_IN.format(faults_env=FAULTS_ENV), encoding="utf-8")
    for name in ("input", "output", "temp"):
        (path / name).mkdir(exist_ok=True)
    return path


def comfyfarm_nodes_args(config_path: Path, custom_nodes: Path = COMFYFARM_NODES_DIR) -> List[str]:
    """Write an extra_model_paths.yaml at config_path whose one ``custom_nodes:`` entry is custom_nodes
    (default: farm_plugin/ComfyUINodes, the folder of comfyfarm's ``comfyfarm_frames`` pack) and return the
    arguments that give it to a ComfyUI: ``["--extra-model-paths-config", str(config_path)]``."""
    config_path = Path(config_path)
    config_path.write_text(f"comfyfarm:\n  custom_nodes: {custom_nodes}\n", encoding="utf-8")
    return ["--extra-model-paths-config", str(config_path)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FakeComfyUI:
    url: str
    port: int
    root: Path
    input_dir: Path
    output_dir: Path
    temp_dir: Path
    process: subprocess.Popen
    log_path: Path

    def set_faults(self, **faults: Any) -> None:
        """Replace the whole fault set (POST /__fake__/faults); no arguments clears it."""
        r = requests.post(f"{self.url}/__fake__/faults", json=faults, timeout=10)
        if r.status_code != 200:
            raise ValueError(f"the ComfyUI double refused the faults {faults!r}: {r.text}")

    def stats(self) -> Dict[str, int]:
        r = requests.get(f"{self.url}/__fake__/stats", timeout=10)
        r.raise_for_status()
        return r.json()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL and wait."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, wait (SIGKILL after 5 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def command(port: int, root: Path, extra_args: Sequence[str] = ()) -> list:
    """The command line the harness runs (ComfyUI's own arguments, then extra_args)."""
    return [sys.executable, "-m", "tests.doubles.comfyui", "--listen", "127.0.0.1", "--port", str(port),
            "--input-directory", str(root / "input"), "--output-directory", str(root / "output"),
            "--temp-directory", str(root), "--cpu", "--disable-auto-launch", *extra_args]


def start_fake_comfyui(root: Path, *, port: Optional[int] = None, faults: Optional[dict] = None,
                       timeout_s: float = 20.0, extra_args: Sequence[str] = ()) -> FakeComfyUI:
    """Start the double as a subprocess in root (dirs created there), wait until /system_stats
    answers (raise with the log tail if it does not within timeout_s). extra_args are more of ComfyUI's
    arguments, e.g. ``["--disable-all-custom-nodes"]`` for a core-only ComfyUI (no ``RIFE VFI``, no
    ``ComfyFarmTemporalMean``), or ``comfyfarm_nodes_args(...)`` for one with comfyfarm's frame nodes."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name in ("input", "output", "temp"):
        (root / name).mkdir(exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONUNBUFFERED"] = "1"
    if faults is not None:
        env[FAULTS_ENV] = json.dumps(faults)
    else:
        env.pop(FAULTS_ENV, None)

    attempts = 1 if port is not None else 3
    last_error = ""
    for attempt in range(attempts):
        chosen = port if port is not None else free_port()
        log_path = root / (f"comfyui-{chosen}.log" if attempt else "comfyui.log")
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(command(chosen, root, extra_args), cwd=str(root), env=env, stdout=log_file,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        fake = FakeComfyUI(url=f"http://127.0.0.1:{chosen}", port=chosen, root=root, input_dir=root / "input",
                           output_dir=root / "output", temp_dir=root / "temp", process=process, log_path=log_path)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if requests.get(f"{fake.url}/system_stats", timeout=1).status_code == 200:
                    return fake
            except requests.RequestException:
                pass
            time.sleep(0.05)
        tail = _log_tail(log_path)
        if process.poll() is None:
            fake.kill()
            raise RuntimeError(f"the ComfyUI double did not answer on {fake.url} within {timeout_s} s; log:\n{tail}")
        last_error = f"the ComfyUI double exited with status {process.returncode}; log:\n{tail}"
        if "address already in use" not in tail.lower():
            break
    raise RuntimeError(last_error)
