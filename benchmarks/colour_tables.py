"""What keeping the colour tables between processes saves each farm task.

Every task of a farm job runs in a new process, which converts the plate to the working space and the results
back: two colour conversions, each tabulated once per process (farm_plugin/frames/curves.py). This runs, in new
processes side by side, the first 2048x1080 half frame of a task both ways (plate to working space, then back):
with no kept tables (each process builds them), then with the tables an earlier process kept
(``COMFYFARM_CACHE_DIR``). It prints the CPU and wall seconds of each, and what a task saves.

    python benchmarks/colour_tables.py [--runs 5] [--width 2048] [--height 1080]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]

TASK = """
import json, sys, time
import numpy as np
cpu, wall = time.process_time(), time.perf_counter()
from farm_plugin.frames.colour import SCENE_LINEAR_REC709, ColourPolicy, from_working, to_working
plate = np.random.default_rng(3).uniform(0, 4, ({height}, {width}, 3)).astype(np.float16)
policy = ColourPolicy(plate_space=SCENE_LINEAR_REC709)
from_working(to_working(plate, policy), policy)
print(json.dumps({{"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}}))
"""


def first_frame(cache: str, width: int, height: int) -> Dict[str, float]:
    env = {**os.environ, "COMFYFARM_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-c", TASK.format(width=width, height=height)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--height", type=int, default=1080)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        kept = str(Path(folder) / "kept")
        first_frame(kept, args.width, args.height)  # an earlier task kept them
        built = [first_frame("", args.width, args.height) for _ in range(args.runs)]
        read = [first_frame(kept, args.width, args.height) for _ in range(args.runs)]
    for name, runs in (("tables built", built), ("tables kept", read)):
        cpu = statistics.median(r["cpu"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        print(f"{name:>13}: first {args.width}x{args.height} half frame both ways, median of {args.runs}: "
              f"{cpu:.3f} s CPU, {wall:.3f} s wall (imports included)")
    saved = statistics.median(r["cpu"] for r in built) - statistics.median(r["cpu"] for r in read)
    ratio = statistics.median(r["wall"] for r in built) / statistics.median(r["wall"] for r in read)
    print(f"saved per task: {saved:.3f} s CPU; first frame {ratio:.2f}x sooner (wall)")
    print(json.dumps({"size": [args.width, args.height], "runs": args.runs, "built": built, "kept": read,
                      "saved_cpu_s": round(saved, 3), "first_frame_ratio": round(ratio, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
