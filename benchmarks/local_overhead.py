"""How much run-local adds to ComfyUI's own work, and how it scales from one instance to two.

200 frames through ``invert`` with ``run-local``'s own code (record, chunks, servers, chunk runner)
against the ComfyUI test double with a fixed 50 ms per frame, once with one instance and once with two;
and against a real ComfyUI when ``COMFYUI_DIR`` (with ``COMFYUI_PYTHON``) or ``COMFYUI_URL`` is set.

ComfyUI's busy time is the sum over prompts of ``execution_success - execution_start`` (its own
timestamps). ``efficiency`` = busy / wall with one instance (wall: from the first chunk to the last
verified frame; ComfyUI's start-up is printed apart); ``speedup_2`` = wall(1) / wall(2).
Targets: efficiency >= 0.95 at 50 ms per frame, speedup_2 >= 1.85. The last line is one JSON object.

    python benchmarks/local_overhead.py [--frames 200] [--delay-ms 50] [--size 64x64]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm_plugin.comfyui.server import ComfyUIServer, ExternalServer, ServerConfig  # noqa: E402
from farm_plugin.frames.framelist import chunk_frames  # noqa: E402
from farm_plugin.jobrecord import JobRecord, OutputSpec, SourceSpec, WorkflowSpec  # noqa: E402
from farm_plugin.runner.local import LocalRun  # noqa: E402
from farm_plugin.runner.progress import ProgressSink  # noqa: E402
from farm_plugin.workflow.package import load_package  # noqa: E402
from flame_submitter.cli.demo_plate import write_demo_plate  # noqa: E402
from tests.doubles.comfyui.harness import make_fake_comfyui_dir  # noqa: E402

INVERT_NODES = 3


def record_for(plate: str, frames: List[int], output: str, name: str) -> JobRecord:
    package = load_package(REPO / "workflows" / "invert")
    return JobRecord(
        job_id=name, name=name, workflow=WorkflowSpec.from_package(package, package.graph, {}),
        source=SourceSpec(plate, tuple(frames)), output=OutputSpec(output),
    )


def run_once(record: JobRecord, servers: list, scratch: Path, chunk_size: int) -> Dict[str, float]:
    local = LocalRun(record, servers, scratch_dir=scratch, progress_for=lambda _i: ProgressSink(),
                     restart_limit=0, idle_timeout_s=120)
    local.start_servers()
    try:
        report = local.run(chunk_frames(list(record.source.frames), chunk_size))
    finally:
        local.stop_servers()
    if report.failures or len(report.written) != len(record.source.frames):
        raise SystemExit(f"benchmark run failed: {report.failures[:3]}")
    return {"wall_s": report.processing_seconds, "busy_s": report.busy_seconds,
            "startup_s": report.startup_seconds}


def managed(comfyui_dir: Path, instances: int, scratch: Path, *, python: Optional[str], args: tuple,
            env: Dict[str, str], base_port: int) -> list:
    return [
        ComfyUIServer(ServerConfig(comfyui_dir=comfyui_dir, port=base_port + i, python=python, extra_args=args,
                                   extra_env=env, scratch_dir=scratch / f"comfyui-{i}", port_in_use="next"))
        for i in range(instances)
    ]


def measure(label: str, make_servers, plate: str, frames: List[int], work: Path, chunk_size: int) -> Dict:
    results = {}
    for instances in (1, 2):
        out = work / f"{label}-{instances}"
        record = record_for(plate, frames, str(out / "out.####.exr"), f"{label}{instances}")
        results[instances] = run_once(record, make_servers(instances, out / "scratch"), out / "scratch", chunk_size)
        shutil.rmtree(out)
        print(f"{label}: {instances} instance(s): wall {results[instances]['wall_s']:.2f} s, ComfyUI busy "
              f"{results[instances]['busy_s']:.2f} s, start-up {results[instances]['startup_s']:.2f} s", flush=True)
    return {
        "efficiency": round(results[1]["busy_s"] / results[1]["wall_s"], 3),
        "speedup_2": round(results[1]["wall_s"] / results[2]["wall_s"], 3),
        "wall_1_s": round(results[1]["wall_s"], 3),
        "wall_2_s": round(results[2]["wall_s"], 3),
        "busy_1_s": round(results[1]["busy_s"], 3),
        "startup_1_s": round(results[1]["startup_s"], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--size", default="64x64", help="plate resolution, WxH")
    parser.add_argument("--chunk-size", type=int, default=10)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="comfyfarm-bench-"))
    summary: Dict[str, object] = {"frames": args.frames, "delay_ms": args.delay_ms, "size": args.size,
                                  "chunk_size": args.chunk_size, "cpus": os.cpu_count()}
    try:
        plate = write_demo_plate(work / "plate", frame_count=args.frames, width=width, height=height)
        frames = list(range(1001, 1001 + args.frames))
        fake_dir = make_fake_comfyui_dir(work / "fake-comfyui")
        faults = json.dumps({"node_delay_s": args.delay_ms / 1000.0 / INVERT_NODES})
        summary.update(measure(
            "double",
            lambda n, scratch: managed(fake_dir, n, scratch, python=sys.executable, args=(),
                                       env={"COMFYFARM_FAKE_FAULTS": faults}, base_port=18400),
            plate, frames, work, args.chunk_size,
        ))
        real_url, real_dir = os.environ.get("COMFYUI_URL"), os.environ.get("COMFYUI_DIR")
        if real_url:
            summary["real"] = measure("real", lambda n, _s: [ExternalServer(real_url)] * n,
                                      plate, frames, work, args.chunk_size)
        elif real_dir:
            extra_env = {"PYTHONPATH": os.environ["COMFYUI_PYTHONPATH"]} if "COMFYUI_PYTHONPATH" in os.environ else {}
            summary["real"] = measure(
                "real",
                lambda n, scratch: managed(Path(real_dir), n, scratch, python=os.environ.get("COMFYUI_PYTHON"),
                                           args=tuple(os.environ.get("COMFYUI_ARGS", "--cpu").split()),
                                           env=extra_env, base_port=18500),
                plate, frames, work, args.chunk_size,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary["targets"] = {"efficiency": 0.95, "speedup_2": 1.85}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
