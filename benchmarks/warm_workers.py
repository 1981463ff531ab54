"""The time comfyfarm's Worker service saves per job, measured on the emulated farm.

A studio sends the same workflow for shot after shot. Without the service each job starts ComfyUI (and loads
its models) once on every Worker it lands on; with it, each Worker's GPU keeps one warm ComfyUI across jobs.
Here the ComfyUI double stands for ComfyUI with ``--startup-s`` of start-up and model load (its
``startup_delay_s``); ``--jobs`` jobs of ``invert`` (``--frames`` frames each, chunks of ``--chunk-size``)
run one after another on two Workers (GPU 0 and GPU 1), once with each plugin starting its own ComfyUI, once
with ``python -m farm_plugin.service serve`` running for both GPUs (started before the clock starts, as it
runs on a farm: its start-up is paid once per machine boot, not per job). Side by side in one run it prints
each job's wall time (submit to Completed), the mean per job of both, the saving per job, and the ComfyUI
starts each way.

    python benchmarks/warm_workers.py [--startup-s 20] [--jobs 3] [--frames 16] [--chunk-size 4]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.farm.conftest import PYTHON, Studio, make_studio, quiet_base_port, worker_lines  # noqa: E402
from tests.farm_emulator.farm import start_farm  # noqa: E402

OWN_START = "comfyfarm: ComfyUI is up at"


def run_jobs(studio: Studio, jobs: int, frames: int, chunk: int) -> List[float]:
    """Submit ``jobs`` jobs one after another (each waits for the one before); each one's wall seconds."""
    walls = []
    for index in range(jobs):
        first = 1001 + index * frames
        started = time.monotonic()
        job_id = studio.submit("--chunk-size", str(chunk), frames=f"{first}-{first + frames - 1}")
        state = studio.farm.wait_for_job(job_id, timeout_s=600)
        if state != "Completed":
            raise SystemExit(f"job {job_id} ended {state}:\n{studio.farm.describe(job_id)}")
        walls.append(time.monotonic() - started)
    return walls


def measure(work: Path, with_service: bool, args: argparse.Namespace) -> Dict[str, Any]:
    farm = start_farm(work)
    service = None
    try:
        studio = make_studio(farm, work, frame_count=args.jobs * args.frames)
        faults = json.dumps({"startup_delay_s": args.startup_s})
        studio.configure(faults=faults, StartupTimeoutSeconds=str(int(args.startup_s * 4 + 30)))
        starts = 0
        if with_service:
            state = work / "service-state"
            service = subprocess.Popen(
                [PYTHON, "-m", "farm_plugin.service", "--state-dir", str(state), "serve", "--comfyui-dir",
                 str(studio.comfyui_dir), "--gpus", "0,1", "--python", PYTHON, "--base-port", str(quiet_base_port()),
                 "--startup-timeout-s", str(args.startup_s * 4 + 30)],
                cwd=REPO, env={**studio.environment(), "COMFYFARM_FAKE_FAULTS": faults},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + args.startup_s * 4 + 60
            while len(list(state.glob("gpu-*.json"))) < 2:
                if service.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the service did not start")
                time.sleep(0.2)
            studio.configure(faults=faults, StartupTimeoutSeconds=str(int(args.startup_s * 4 + 30)),
                             ServiceDirectory=str(state))
        workers = farm.start_workers(2)
        walls = run_jobs(studio, args.jobs, args.frames, args.chunk_size)
        starts = sum(len(lines) for lines in worker_lines(farm, workers, OWN_START).values())
        if with_service:
            states = (work / "service-state").glob("gpu-*.json")
            starts += sum(json.loads(path.read_text())["starts"] for path in states)
        return {"walls_s": [round(w, 2) for w in walls], "mean_s": round(sum(walls) / len(walls), 2),
                "comfyui_starts": starts}
    finally:
        farm.close()
        if service is not None:
            service.terminate()
            service.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--startup-s", type=float, default=20.0, help="ComfyUI's start-up and model load, seconds")
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=16, help="frames per job")
    parser.add_argument("--chunk-size", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="comfyfarm-warm-"))
    try:
        cold = measure(root / "cold", False, args)
        print(f"without the service: {cold}", flush=True)
        warm = measure(root / "warm", True, args)
        print(f"with the service:    {warm}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    saved = cold["mean_s"] - warm["mean_s"]
    print(f"\n== {args.jobs} jobs of {args.frames} frames on 2 Workers, ComfyUI start-up + model load "
          f"{args.startup_s:g} s ==")
    print(f"  per job without the service   {cold['mean_s']:.2f} s  (ComfyUI started {cold['comfyui_starts']} times)")
    print(f"  per job with the service      {warm['mean_s']:.2f} s  (ComfyUI started {warm['comfyui_starts']} times, "
          "before the first job)")
    print(f"  saved per job                 {saved:.2f} s ({saved / cold['mean_s']:.0%})")
    print(json.dumps({"startup_s": args.startup_s, "jobs": args.jobs, "frames": args.frames,
                      "chunk_size": args.chunk_size, "without": cold, "with": warm,
                      "saved_per_job_s": round(saved, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
