"""How the farm scales: the same job on 1, 2, 4, 8 and 16 emulated Workers.

Each run is a fresh emulated farm (the Web Service double and N Worker processes running the real
ComfyUI plugin through the Deadline runtime double), one ComfyUI double per Worker GPU with a fixed
delay per frame, and one job submitted with ``comfyfarm submit``. Wall time runs from submission to the
job's completion. ``ideal`` = frames × delay / Workers; ``efficiency`` = ideal / wall. ``startup_s`` is
the time from submission until every Worker's ComfyUI answers (all of them start at once on this one
machine, which a farm of separate nodes does not do), and ``efficiency_after_startup`` = ideal / (wall -
startup), DESIGN.md's "N times faster, less the unavoidable start-up". ``comfyui_starts``
counts ComfyUI start-ups in the Worker logs: one per Worker for the whole job (warmth), however many
tasks it takes. Targets: efficiency >= 0.9 at 16 Workers, starts = Workers. The last line is one JSON object.

    python benchmarks/farm_scaling.py [--frames 320] [--delay-ms 1000] [--chunk-size 20] [--workers 1,2,4,8,16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.farm.conftest import make_studio, worker_lines  # noqa: E402
from tests.farm_emulator.farm import start_farm  # noqa: E402

INVERT_NODES = 3


def watch_startup(farm, names: List[str], started: float, up: List[float]) -> None:
    """Note when every Worker's ComfyUI has answered (its "ComfyUI is up" log line)."""
    deadline = started + 600
    while time.monotonic() < deadline:
        lines = worker_lines(farm, names, "comfyfarm: ComfyUI is up")
        if all(lines.get(name) for name in names):
            up.append(time.monotonic() - started)
            return
        time.sleep(0.2)


def run_once(workers: int, frames: int, delay_s: float, chunk_size: int) -> Dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="comfyfarm-farm-bench-") as folder:
        farm = start_farm(Path(folder))
        try:
            studio = make_studio(farm, Path(folder), frame_count=frames)
            studio.configure(faults=json.dumps({"node_delay_s": delay_s / INVERT_NODES}))
            names = farm.start_workers(workers)
            started = time.monotonic()
            job_id = studio.submit("--chunk-size", str(chunk_size), frames=f"1001-{1000 + frames}")
            up: List[float] = []
            watch = threading.Thread(target=watch_startup, args=(farm, names, started, up), daemon=True)
            watch.start()
            state = farm.wait_for_job(job_id, timeout_s=frames * delay_s * 3 + 120)
            wall = time.monotonic() - started
            watch.join(timeout=5)
            if state != "Completed" or len(studio.outputs()) != frames:
                raise SystemExit(f"{workers} Worker(s): the job ended {state} with {len(studio.outputs())} frames")
            starts = sum(len(v) for v in worker_lines(farm, names, "comfyfarm: ComfyUI is up at").values())
        finally:
            farm.close()
    ideal = frames * delay_s / workers
    startup = up[0] if up else float("nan")
    result = {"workers": workers, "wall_s": round(wall, 2), "ideal_s": round(ideal, 2),
              "efficiency": round(ideal / wall, 3), "startup_s": round(startup, 2),
              "efficiency_after_startup": round(ideal / (wall - startup), 3) if up else None,
              "comfyui_starts": starts}
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=320)
    parser.add_argument("--delay-ms", type=float, default=1000.0)
    parser.add_argument("--chunk-size", type=int, default=20)
    parser.add_argument("--workers", default="1,2,4,8,16")
    args = parser.parse_args()
    runs: List[Dict[str, float]] = [run_once(int(n), args.frames, args.delay_ms / 1000.0, args.chunk_size)
                                    for n in args.workers.split(",")]
    summary = {"frames": args.frames, "delay_ms": args.delay_ms, "chunk_size": args.chunk_size,
               "cpus": os.cpu_count(), "runs": runs,
               "targets": {"efficiency_at_16": 0.9, "comfyui_starts": "= workers"}}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
