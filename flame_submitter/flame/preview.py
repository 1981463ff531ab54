"""The submit dialog's Preview, from Flame: the frame on disk, then ``comfyfarm preview`` off the main thread.

On the main thread: the frames to render as a pattern on disk (Flame exports them when the clip is not an image
sequence it can read, as a submission does), and the program that runs comfyfarm. Then a thread renders them,
on the local ComfyUI (``preview.local``) or as a one-task farm job whose frames ``comfyfarm preview --rendered``
turns into pictures (``preview.farm``), and hands the result to the dialog (``post_preview_result``, which is
safe from any thread). Stop, or closing the dialog, sets the preview's stop event.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from farm_plugin.errors import ComfyfarmError
from flame_submitter.config import Config
from flame_submitter.dialog.model import PreviewChoice
from flame_submitter.flame.launch import clean_environment, comfyfarm_command
from flame_submitter.flame.media import FlameSource
from flame_submitter.flame.submit import local_requests
from flame_submitter.preview.local import preview_command, run_preview
from flame_submitter.preview.progress import FarmWatcher, job_progress
from flame_submitter.preview.request import PreviewResult

logger = logging.getLogger(__name__)


class PreviewRunner:
    """Renders the previews one dialog asks for, one at a time (see the module docstring)."""

    def __init__(self, flame: Any, config: Config, dialog: Any, sources: Sequence[FlameSource]) -> None:
        self.flame = flame
        self.config = config
        self.dialog = dialog
        self.sources = {source.name: source for source in sources}
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None
        dialog.preview_requested.connect(self.start)
        dialog.preview_stop_requested.connect(self.stop_preview)

    def stop_preview(self) -> None:
        """Stop, or the dialog closed: the preview rendering now stops, and nothing it started is left running."""
        self.stop.set()

    def start(self, choice: PreviewChoice) -> None:
        """Main thread: put the frames on disk and start the render; every outcome reaches the dialog."""
        self.stop = threading.Event()
        try:
            launcher = comfyfarm_command(str(self.flame.get_version()))
            source = self.sources[choice.clip.name]
            work = self._local_work(choice, source, launcher)
        except ComfyfarmError as exc:  # no comfyfarm to run, an export or a selection problem: in words
            self.dialog.show_preview_result(PreviewResult(error=str(exc)))
            return
        except Exception as exc:  # the dialog must not stay busy: the artist gets words, the log the traceback
            logger.exception("comfyfarm: the preview could not start")
            self.dialog.show_preview_result(PreviewResult(error=f"The preview could not start: an unexpected error "
                                                                f"({exc!r}); see the shell's log"))
            return
        post = self.dialog.post_preview_result
        self.thread = threading.Thread(target=lambda: post(work()), name="comfyfarm-preview", daemon=True)
        self.thread.start()

    def _local_work(self, choice: PreviewChoice, source: FlameSource,
                    launcher: Sequence[str]) -> Callable[[], PreviewResult]:
        request = local_requests(self.flame, [source], choice.choice, self.config)[0]
        folder = Path(self.config.scratch) / "preview" / source.name
        command = preview_command(launcher, choice.settings, pattern=request.pattern, frame=choice.frame,
                                  folder=folder, gpus=tuple(self.config.gpus))
        stop, progress, env = self.stop, self.dialog.post_preview_progress, clean_environment()
        return lambda: run_preview(command, progress=progress, stop=stop, env=env)


def watch_farm(flame: Any, dialog: Any, jobs: Sequence[str]) -> Optional[FarmWatcher]:
    """Show ``jobs`` in the dialog's farm view as the farm reports them, until they finish or the dialog closes;
    None (and a line in the shell's log) where comfyfarm cannot be run from this Flame."""
    try:
        launcher = comfyfarm_command(str(flame.get_version()))
    except ComfyfarmError as exc:
        logger.warning("comfyfarm: no farm view of %s: %s", ", ".join(jobs), exc)
        return None
    env = clean_environment()
    watcher = FarmWatcher(jobs, lambda job: job_progress(launcher, job, env=env), dialog.post_farm_progress)
    dialog.finished.connect(watcher.stop.set)
    return watcher.start()
