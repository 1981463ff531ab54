"""What overlap costs: frames processed per frame delivered, for the shipped sequence packages.

For each package in ``workflows/`` with ``mode: sequence``, at the chunk size the job builder gives its
template (rounded to whole windows), and for a few clip lengths: the frames ComfyUI is sent (every window,
handles included) against the output frames delivered. ``processed_per_delivered`` is 1.0 for a workflow
without handles; a 24-frame window with 4 handles each side keeps 16 frames, so it costs about 1.5. For an
interpolation, delivered counts the in-betweens, so ``processed_per_source`` (frames sent per source frame)
is its overhead: the frame each window shares with the next.

A model's time grows with the frames it is given, so this is the compute the handles cost, before any
fixed per-prompt cost (more windows, more prompts). The last line is one JSON object.

    python benchmarks/temporal_overlap.py [--clips 48,100,240]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm_plugin.frames.framelist import chunk_frames  # noqa: E402
from farm_plugin.frames.retime import Retime  # noqa: E402
from farm_plugin.runner.units import plan_units, window_budget  # noqa: E402
from farm_plugin.workflow.package import list_packages, load_package  # noqa: E402
from flame_submitter.jobs.builder import sequence_chunk_size  # noqa: E402
from flame_submitter.jobs.templates import load_template  # noqa: E402


def cost(package, chunk_size: int, clip_length: int) -> Dict[str, object]:
    clip = list(range(1001, 1001 + clip_length))
    processed = 0
    windows = 0
    for chunk in chunk_frames(clip, chunk_size):
        for unit in plan_units(chunk, package.mode, package.sequence, clip):
            processed += len(unit.window)
            windows += 1
    delivered = len(Retime(tuple(clip), package.sequence.ratio).output_frames())
    return {"clip": clip_length, "chunk": chunk_size, "windows": windows, "processed": processed,
            "delivered": delivered, "processed_per_delivered": round(processed / delivered, 3),
            "processed_per_source": round(processed / clip_length, 3)}


def static_costs(clip_lengths: List[int]) -> List[Dict[str, object]]:
    rows = []
    for folder in list_packages(REPO / "workflows"):
        package = load_package(folder)
        if package.mode != "sequence" or package.sequence is None:
            continue
        template = sequence_chunk_size(load_template(package.template), package)
        for length in clip_lengths:
            row = {"package": package.name, "context": package.sequence.context_frames,
                   "overlap": package.sequence.overlap_frames, "ratio": package.sequence.ratio,
                   "own_per_window": window_budget(package.sequence)}
            row.update(cost(package, template.chunk_size, length))
            rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", default="48,100,240", help="clip lengths, comma-separated")
    args = parser.parse_args()
    rows = static_costs([int(n) for n in args.clips.split(",")])
    print(f"{'package':34} {'ctx':>4} {'ovl':>4} {'ratio':>5} {'clip':>5} {'chunk':>5} {'windows':>7} "
          f"{'processed':>9} {'delivered':>9} {'proc/deliv':>10} {'proc/source':>11}")
    for row in rows:
        print(f"{row['package']:34} {row['context']:>4} {row['overlap']:>4} {row['ratio']:>5g} {row['clip']:>5} "
              f"{row['chunk']:>5} {row['windows']:>7} {row['processed']:>9} {row['delivered']:>9} "
              f"{row['processed_per_delivered']:>10} {row['processed_per_source']:>11}")
    print(json.dumps({"benchmark": "temporal_overlap", "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
