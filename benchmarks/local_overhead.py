"""run-local's overhead at production sizes, against the rate at which this machine reads and writes the EXRs.

For each size of ``--sizes`` (default 2048x1080 and 3840x2160), side by side in one run:

1. **Plate**: OpenEXR half RGBA (zip), written with OpenImageIO through comfyfarm's ``write_frame``:
   scene-linear values from -0.5 to 4.0 (a gradient with grain and a moving highlight) and a soft alpha
   matte, with timecode; ``--frames`` frames (default 24 up to 2K, 12 above).
2. **EXR read+write rate**, the reference: frames/s at which this machine reads the plate's frames as float
   and writes them again with the same header (half, zip: what comfyfarm's writer writes), with OpenImageIO
   held to one thread per worker, with one worker thread and with two.
3. **ComfyUI test double**, ``invert`` with a fixed ``--delay-ms`` per frame (default 250), through
   run-local's own code (``LocalRun``: chunks, servers, chunk runner), with one instance and with two.
   ``busy`` = ComfyUI's busy time / wall with one instance (busy: the sum over prompts of
   ``execution_success - execution_start``, ComfyUI's own timestamps; wall: from the first chunk to the last
   verified frame, start-up printed apart); ``speedup_2`` = wall(1) / wall(2).
4. **Real ComfyUI**, when ``COMFYUI_URL``, or ``COMFYUI_DIR`` (with ``COMFYUI_PYTHON``, ``COMFYUI_ARGS``,
   default ``--cpu``, and ``COMFYUI_PYTHONPATH``), is set: a no-op graph (core LoadImage -> SaveImage, a
   package built at run time) through the same code with one instance: frames/s, ``real_ratio`` = that rate /
   the best EXR read+write rate of (2), the frame path the runner took ("full precision" or "8-bit path") and
   the largest difference between the first output frame and its plate.

Each run also reports the runner's peak resident memory (sampled every 20 ms) and the CPU seconds it took with
its ComfyUI processes; from those, ``speedup_2_ceiling`` = the most a second instance can gain where the work
is CPU-bound: min(2, cores / CPU seconds per frame / frames per second with one instance).

Targets (issue 17): busy >= 0.9 at 250 ms per frame, speedup_2 >= 1.8 on a 2-core machine, real_ratio >= 0.5.
Each size prints a table with every ratio next to its target (met / NOT met) and the user CPU seconds that
other processes took meanwhile (from /proc/stat: well above 0, the machine was shared and the figures are
low); the last line is one JSON object with every figure. A default run takes about 5 minutes on 2 cores.

    python benchmarks/local_overhead.py [--sizes 2048x1080,3840x2160] [--frames 24,12] [--delay-ms 250]
                                        [--chunk-size 6]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import OpenImageIO as oiio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm_plugin.comfyui.server import ComfyUIServer, ExternalServer, ServerConfig  # noqa: E402
from farm_plugin.frames.colour import ColourPolicy, from_working, to_working  # noqa: E402
from farm_plugin.frames.framelist import chunk_frames  # noqa: E402
from farm_plugin.frames.image_io import probe, read_pixels, timecode_bcd, write_frame  # noqa: E402
from farm_plugin.jobrecord import JobRecord, OutputSpec, SourceSpec, WorkflowSpec  # noqa: E402
from farm_plugin.runner.local import LocalRun, LocalServer  # noqa: E402
from farm_plugin.runner.progress import ProgressSink  # noqa: E402
from farm_plugin.workflow.package import load_package  # noqa: E402
from flame_submitter.cli.demo_plate import frame_timecode  # noqa: E402
from tests.doubles.comfyui.harness import make_fake_comfyui_dir  # noqa: E402

TARGETS = {"busy": 0.9, "speedup_2": 1.8, "real_ratio": 0.5}
INVERT_NODES = 3  # LoadImage, ImageInvert, SaveImage: the double sleeps delay / 3 in each
FIRST_FRAME = 1001
NOOP_GRAPH = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "frame.png"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "comfyfarm/noop"}},
}
NOOP_MANIFEST = """\
schema: 1
title: No-op
description: LoadImage straight into SaveImage (built by benchmarks/local_overhead.py).
category: Utility
mode: per_frame
template: default
input: {node: "1", input: image}
output: {node: "2", input: filename_prefix}
requirements:
  nodes: [LoadImage, SaveImage]
"""

MakeServers = Callable[[int, Path], List[LocalServer]]


def cpu_seconds() -> Tuple[float, float]:
    """(user CPU seconds of every process on this machine, from /proc/stat; this process's and its reaped
    children's): their growth apart is what other processes took from the measurement (NaN off Linux). User
    time only: the kernel's page-cache writeback of our own files runs in kernel threads, not ours."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            user, nice = (int(value) for value in stat.readline().split()[1:3])
        machine = (user + nice) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        machine = float("nan")
    own = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return machine, sum(usage.ru_utime for usage in own)


def write_plate(folder: Path, width: int, height: int, count: int) -> str:
    """``count`` frames of a scene-linear RGBA half plate (-0.5 .. 4.0, soft alpha); returns the pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, np.full_like(x, 0.3)], axis=-1) * 4.5 - 0.5
    grain = np.random.default_rng(0).normal(0.0, 0.02, (height, width, 3)).astype(np.float32)
    for index in range(count):
        centre = width * (0.2 + 0.6 * index / max(1, count - 1))
        distance = np.hypot(x - centre, y - height / 2) / (height / 4)
        rgb = base + np.roll(grain, 17 * index, axis=1)
        rgb[distance < 0.5] = 4.0  # a highlight at the top of the range
        alpha = np.clip(1.5 - distance, 0.0, 1.0)
        pixels = np.concatenate([np.clip(rgb, -0.5, 4.0), alpha[..., None]], axis=-1)
        pixels[0, 0, :3] = -0.5
        timecode = timecode_bcd(frame_timecode(index, 24))
        write_frame(folder / f"plate.{FIRST_FRAME + index:04d}.exr", pixels,
                    metadata={"smpte:TimeCode": [timecode, 0], "FramesPerSecond": (24, 1)})
    return str(folder / "plate.####.exr")


def warm_colour_tables(plate: Path) -> None:
    """Build the colour tables of the plate's conversions before the clock starts: run-local builds them once
    per process (about a second of CPU), which a first run would otherwise pay alone (farm_plugin/frames/curves.py)."""
    policy = ColourPolicy.default_for(probe(plate))
    from_working(to_working(np.zeros((512, 512, 3), np.float16), policy), policy)


def exr_rate(sources: Sequence[Path], out_dir: Path, workers: int) -> float:
    """Frames/s reading ``sources`` as float and writing them again with their own header, on ``workers``
    threads, OpenImageIO and OpenEXR held to one thread each (their settings are restored after)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = {name: oiio.get_int_attribute(name) for name in ("threads", "exr_threads")}

    def copy(source: Path) -> None:
        image_input = oiio.ImageInput.open(str(source))
        if image_input is None:
            raise SystemExit(f"cannot read {source}: {oiio.geterror()}")
        spec = oiio.ImageSpec(image_input.spec())
        pixels = image_input.read_image("float")
        image_input.close()
        target = str(out_dir / source.name)
        output = oiio.ImageOutput.create(target)
        if pixels is None or output is None or not output.open(target, spec) or not output.write_image(pixels):
            raise SystemExit(f"EXR read+write failed for {source}: {oiio.geterror()}")
        output.close()

    oiio.attribute("threads", 1)
    oiio.attribute("exr_threads", -1)  # no OpenEXR pool: (de)compression on the calling thread
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(copy, sources))
        return len(sources) / (time.perf_counter() - started)
    finally:
        for name, value in saved.items():
            oiio.attribute(name, value)
        shutil.rmtree(out_dir, ignore_errors=True)


class PathSink(ProgressSink):
    """Keeps the status lines that say which frame path the runner took."""

    def __init__(self, paths: Set[str]) -> None:
        self.paths = paths

    def status(self, text: str) -> None:
        if text.startswith(("full precision", "8-bit path")):
            self.paths.add(text)


def process_cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class PeakMemory:
    """The largest resident memory of this process (the runner's) while in the block, sampled every 20 ms."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            try:
                with open("/proc/self/statm", encoding="ascii") as statm:
                    resident = int(statm.read().split()[1]) * page / 1e6
            except (OSError, ValueError, IndexError):
                return  # not Linux: no figure
            self.peak_mb = max(self.peak_mb, resident)
            if self._stop.wait(0.02):
                return


def run_once(package: Path, plate: str, frames: List[int], out: Path, servers: List[LocalServer],
             chunk_size: int) -> Dict[str, Any]:
    """One run-local run of ``package`` over ``frames``; wall, busy and start-up seconds, the frame path, and
    the runner's peak resident memory during the run (this process: the chunks run here)."""
    workflow = load_package(package)
    record = JobRecord(job_id=out.name, name=out.name, workflow=WorkflowSpec.from_package(workflow, workflow.graph, {}),
                       source=SourceSpec(plate, tuple(frames)), output=OutputSpec(str(out / "out.####.exr")))
    paths: Set[str] = set()
    local = LocalRun(record, servers, scratch_dir=out / "scratch", progress_for=lambda _i: PathSink(paths),
                     restart_limit=0, idle_timeout_s=300)
    local.start_servers()
    cpu_before = process_cpu_seconds()
    try:
        with PeakMemory() as memory:
            report = local.run(chunk_frames(frames, chunk_size))
    finally:
        local.stop_servers()  # ComfyUI's processes end here: their CPU counts as this process's children's
    cpu = process_cpu_seconds() - cpu_before
    if report.failures or len(report.written) != len(frames):
        raise SystemExit(f"benchmark run {out.name} failed: {report.failures[:3]}")
    return {"wall_s": round(report.processing_seconds, 3), "busy_s": round(report.busy_seconds, 3),
            "startup_s": round(report.startup_seconds, 3), "path": "; ".join(sorted(paths)) or "unknown",
            "peak_rss_mb": round(memory.peak_mb), "cpu_s": round(cpu, 2)}


def managed(comfyui_dir: Path, python: Optional[str], args: Tuple[str, ...], env: Dict[str, str],
            base_port: int) -> MakeServers:
    def make(instances: int, scratch: Path) -> List[LocalServer]:
        return [ComfyUIServer(ServerConfig(comfyui_dir=comfyui_dir, port=base_port + i, python=python, extra_args=args,
                                           extra_env=env, scratch_dir=scratch / f"comfyui-{i}", startup_timeout_s=180,
                                           port_in_use="next"))
                for i in range(instances)]
    return make


def real_servers() -> Optional[MakeServers]:
    """The configured real ComfyUI (module docstring), or None."""
    url, comfyui_dir = os.environ.get("COMFYUI_URL"), os.environ.get("COMFYUI_DIR")
    if url:
        return lambda n, _scratch: [ExternalServer(url.rstrip("/")) for _ in range(n)]
    if not comfyui_dir:
        return None
    env = {"PYTHONPATH": os.environ["COMFYUI_PYTHONPATH"]} if "COMFYUI_PYTHONPATH" in os.environ else {}
    return managed(Path(comfyui_dir), os.environ.get("COMFYUI_PYTHON") or None,
                   tuple(shlex.split(os.environ.get("COMFYUI_ARGS", "--cpu"))), env, base_port=18500)


def noop_package(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "workflow.json").write_text(json.dumps(NOOP_GRAPH, indent=1), encoding="utf-8")
    (folder / "workflow.yaml").write_text(NOOP_MANIFEST, encoding="utf-8")
    return folder


def measure_size(width: int, height: int, count: int, args: argparse.Namespace, work: Path, fake_dir: Path,
                 real: Optional[MakeServers]) -> Dict[str, Any]:
    size = f"{width}x{height}"
    root = work / size
    machine_before, own_before = cpu_seconds()
    started = time.monotonic()
    print(f"{size}: writing {count} plate frames ...", flush=True)
    plate = write_plate(root / "plate", width, height, count)
    frames = list(range(FIRST_FRAME, FIRST_FRAME + count))
    sources = [Path(plate.replace("####", f"{frame:04d}")) for frame in frames]
    megabytes = sum(source.stat().st_size for source in sources) / count / 1e6
    result: Dict[str, Any] = {"frames": count, "plate_mb": round(megabytes, 2)}
    for workers in (1, 2):
        result[f"exr_fps_{workers}"] = round(exr_rate(sources, root / "copy", workers), 3)
    print(f"{size}: EXR read+write {result['exr_fps_1']:.2f} frames/s (1 thread), "
          f"{result['exr_fps_2']:.2f} (2 threads)", flush=True)
    warm_colour_tables(sources[0])
    faults = json.dumps({"node_delay_s": args.delay_ms / 1000.0 / INVERT_NODES})
    double = managed(fake_dir, sys.executable, (), {"COMFYFARM_FAKE_FAULTS": faults}, base_port=18400)
    runs: Dict[str, Dict[str, Any]] = {}
    for instances in (1, 2):
        out = root / f"double-{instances}"
        runs[f"double_{instances}"] = run_once(REPO / "workflows" / "invert", plate, frames, out,
                                               double(instances, out / "scratch"), args.chunk_size)
        shutil.rmtree(out)
        print(f"{size}: double, {instances} instance(s): {runs[f'double_{instances}']}", flush=True)
    result.update(runs)
    result["busy"] = round(runs["double_1"]["busy_s"] / runs["double_1"]["wall_s"], 3)
    result["speedup_2"] = round(runs["double_1"]["wall_s"] / runs["double_2"]["wall_s"], 3)
    # CPU-bound, no run on this machine's cores can beat cores / (CPU per frame): the most two instances can gain
    cpu_per_frame = runs["double_1"]["cpu_s"] / count
    cores = os.cpu_count() or 1
    result["speedup_2_ceiling"] = round(min(2.0, cores / cpu_per_frame * runs["double_1"]["wall_s"] / count), 3)
    if real is not None:
        out = root / "real-1"
        run = run_once(noop_package(work / "noop"), plate, frames, out, real(1, out / "scratch"), args.chunk_size)
        first = read_pixels(out / f"out.{FIRST_FRAME:04d}.exr")
        plate_first = read_pixels(sources[0])
        run["max_abs_diff"] = (round(float(np.abs(first - plate_first).max()), 5) if first.shape == plate_first.shape
                               else f"shape {first.shape} != plate {plate_first.shape}")
        shutil.rmtree(out)
        run["fps"] = round(count / run["wall_s"], 3)
        print(f"{size}: real no-op, 1 instance: {run}", flush=True)
        result["real_1"] = run
        result["real_ratio"] = round(run["fps"] / max(result["exr_fps_1"], result["exr_fps_2"]), 3)
    shutil.rmtree(root, ignore_errors=True)
    machine_after, own_after = cpu_seconds()
    result["seconds"] = round(time.monotonic() - started, 1)
    result["other_cpu_s"] = max(0.0, round((machine_after - machine_before) - (own_after - own_before), 1))
    return result


def verdict(name: str, value: float) -> str:
    return f"(target >= {TARGETS[name]:g}: {'met' if value >= TARGETS[name] else 'NOT met'})"


def print_table(size: str, r: Dict[str, Any], delay_ms: float) -> None:
    d1, d2, real = r["double_1"], r["double_2"], r.get("real_1")
    rows = [
        ("plate", f"{r['frames']} frames, OpenEXR half RGBA zip, {r['plate_mb']} MB a frame"),
        ("EXR read+write, 1 thread", f"{r['exr_fps_1']:.2f} frames/s"),
        ("EXR read+write, 2 threads", f"{r['exr_fps_2']:.2f} frames/s"),
        (f"double {delay_ms:g} ms/frame, 1 instance",
         f"wall {d1['wall_s']:.2f} s, busy {d1['busy_s']:.2f} s, start-up {d1['startup_s']:.2f} s"),
        ("double, 2 instances",
         f"wall {d2['wall_s']:.2f} s, busy {d2['busy_s']:.2f} s, start-up {d2['startup_s']:.2f} s"),
        ("runner peak memory", f"{d1['peak_rss_mb']} MB with 1 instance, {d2['peak_rss_mb']} MB with 2 (resident, "
                               "the whole run-local process)"),
        ("double frame path", d1["path"]),
        ("busy (1 instance)", f"{r['busy']:.3f} {verdict('busy', r['busy'])}"),
        ("speedup_2", f"{r['speedup_2']:.3f}x {verdict('speedup_2', r['speedup_2'])}"),
        ("speedup_2 ceiling here", f"{r['speedup_2_ceiling']:.3f}x: {d1['cpu_s'] / r['frames']:.3f} CPU s a frame "
                                   f"(runner + ComfyUI) on {os.cpu_count()} cores"),
    ]
    if real is None:
        rows.append(("real ComfyUI no-op", "not configured (COMFYUI_DIR or COMFYUI_URL): skipped"))
    else:
        rows += [
            ("real no-op, 1 instance", f"{real['fps']:.2f} frames/s (wall {real['wall_s']:.2f} s, busy "
                                       f"{real['busy_s']:.2f} s, start-up {real['startup_s']:.2f} s)"),
            ("real frame path", real["path"]),
            ("real first frame vs plate", f"max |difference| {real['max_abs_diff']}"),
            ("real_ratio (to best EXR rate)", f"{r['real_ratio']:.3f} {verdict('real_ratio', r['real_ratio'])}"),
        ]
    rows.append(("other processes' user CPU", f"{r['other_cpu_s']} s over this size's {r['seconds']} s "
                                              "(0: a quiet machine)"))
    print(f"\n== {size} ==")
    for label, value in rows:
        print(f"  {label:<32} {value}")
    print(flush=True)


def parse_sizes(text: str) -> List[Tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        width, _, height = item.strip().lower().partition("x")
        sizes.append((int(width), int(height)))
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2048x1080,3840x2160", help="plate resolutions, WxH,WxH")
    parser.add_argument("--frames", help="frames per size: one number, or one per size (default 24 up to 2K, 12 above)")
    parser.add_argument("--delay-ms", type=float, default=250.0, help="the double's time per frame")
    parser.add_argument("--chunk-size", type=int, default=6)
    args = parser.parse_args()
    try:
        sizes = parse_sizes(args.sizes)
        counts = [int(n) for n in args.frames.split(",")] if args.frames else [
            24 if width * height <= 2048 * 1080 else 12 for width, height in sizes]
    except ValueError as exc:
        parser.error(f"--sizes takes WxH,WxH (e.g. 2048x1080) and --frames N or N,N: {exc}")
    if len(counts) == 1:
        counts *= len(sizes)
    if len(counts) != len(sizes):
        parser.error(f"--frames gives {len(counts)} counts for {len(sizes)} sizes")
    real = real_servers()
    summary: Dict[str, Any] = {"delay_ms": args.delay_ms, "chunk_size": args.chunk_size, "cpus": os.cpu_count(),
                               "load_avg_1m": round(os.getloadavg()[0], 2), "real": real is not None, "sizes": {}}
    work = Path(tempfile.mkdtemp(prefix="comfyfarm-bench-"))
    try:
        fake_dir = make_fake_comfyui_dir(work / "fake-comfyui")
        for (width, height), count in zip(sizes, counts):
            size = f"{width}x{height}"
            summary["sizes"][size] = measure_size(width, height, count, args, work, fake_dir, real)
            print_table(size, summary["sizes"][size], args.delay_ms)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary["targets"] = TARGETS
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
