"""``python -m farm_plugin.openjd STEP ...``: the one entry point of comfyfarm's Open Job Description job.

    python -m farm_plugin.openjd env enter|exit ...   the step environment: ComfyUI for the session (env.py)
    python -m farm_plugin.openjd task ...             one task: a chunk through the session's ComfyUI (task.py)
    python -m farm_plugin.openjd finish ...           the Finish step: joins, checks, completion record (finish.py)
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from farm_plugin.errors import EXIT_BAD_INPUT

STEPS = ("env", "task", "finish")


def main(argv: Optional[Sequence[str]] = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in STEPS:
        given = f"'{arguments[0]}'" if arguments else "nothing"
        print(f"python -m farm_plugin.openjd: {given} is not a step: give one of {', '.join(STEPS)} (the job "
              "template runs them)", file=sys.stderr)
        return EXIT_BAD_INPUT
    step = importlib.import_module(f"farm_plugin.openjd.{arguments[0]}")
    return int(step.run(arguments[1:]))


if __name__ == "__main__":
    sys.exit(main())
