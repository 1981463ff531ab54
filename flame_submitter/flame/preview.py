"""The submit dialog's Preview, from Flame: the frame on disk, then ``comfyfarm preview`` off the main thread.

On the main thread: the frames to render as a pattern on disk (Flame exports them when the clip is not an image
sequence it can read, as a submission does), and the program that runs comfyfarm. Then a thread renders them,
on the local ComfyUI (``preview.local``) or as a one-task farm job whose frames ``comfyfarm preview --rendered``
turns into pictures (``preview.farm``), and hands the result to the dialog (``post_preview_result``, which is
safe from any thread). Stop, or closing the dialog, sets the preview's stop event.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from farm_plugin.errors import ComfyfarmError
from farm_plugin.workflow.package import load_package
from flame_submitter.config import Config
from flame_submitter.deadline.submit import deadline_client
from flame_submitter.dialog.model import PreviewChoice
from flame_submitter.flame.launch import clean_environment, comfyfarm_command
from flame_submitter.flame.media import FlameSource
from flame_submitter.flame.submit import frames_on_disk, local_requests
from flame_submitter.preview.farm import submit_preview_job, wait_for_job
from flame_submitter.preview.local import PREVIEW_TIMEOUT_S, preview_command, run_preview
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
            if self.config.comfyui_dir or self.config.comfyui_urls:
                work = self._local_work(choice, source, launcher)
            else:
                work = self._farm_work(choice, source, launcher)
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

    def _farm_work(self, choice: PreviewChoice, source: FlameSource,
                   launcher: Sequence[str]) -> Callable[[], PreviewResult]:
        """No local ComfyUI: a one-task job at the top priority renders the frames, then this machine makes the
        pictures of what it wrote (``comfyfarm preview --rendered``)."""
        request = frames_on_disk(self.flame, [source], choice.choice, self.config)[0]
        config, stop, progress = self.config, self.stop, self.dialog.post_preview_progress
        folder, env = Path(config.scratch) / "preview" / source.name, clean_environment()

        def work() -> PreviewResult:
            started = time.monotonic()
            try:
                package = load_package(choice.settings.workflow_path)
                template = choice.choice.job_template(list(config.job_templates_dirs))
                client = deadline_client(config)
                progress(0.0, "Submitting the preview to the farm")
                job = submit_preview_job(request, package=package, parameters=choice.settings.parameters,
                                         template=template, config=config, client=client)
                wait_for_job(client, job.job_id, stop=stop, timeout_s=PREVIEW_TIMEOUT_S, progress=progress)
            except ComfyfarmError as exc:  # refused before the farm, failed on it, stopped or timed out: in words
                return PreviewResult(error=str(exc)[:1].upper() + str(exc)[1:])
            except Exception as exc:  # the artist gets words, the log gets the traceback
                logger.exception("comfyfarm: the farm preview failed")
                return PreviewResult(error=f"The preview could not be rendered on the farm: an unexpected error "
                                           f"({exc!r}); see the shell's log")
            seconds = time.monotonic() - started
            command = preview_command(launcher, choice.settings, pattern=request.pattern, frame=choice.frame,
                                      folder=folder, rendered=job.output_pattern)
            result = run_preview(command, progress=lambda _f, _t: None, stop=stop, env=env)
            if not result.ok:
                return result
            return dataclasses.replace(result, seconds=seconds, where=f"the farm (Deadline job {job.job_id})")

        return work


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
