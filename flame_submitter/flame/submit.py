"""Submit to Deadline from Flame: selection → frames on shared storage → jobs, never freezing Flame.

On the main thread: describe the selection, and export what the farm cannot read as it is (Flame's
foreground export, which the artist expects to wait for). Off the main thread: every check and the Web
Service calls (``submit.plan`` / ``preflight_farm`` / ``submit``). The answer comes back through an idle
event, on the main thread, to whoever asked (the dialog).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Sequence

from farm_plugin.errors import BadInput, ComfyfarmError
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import RelinkIdentity
from farm_plugin.paths import is_mapped, under_any
from farm_plugin.workflow.package import load_package
from flame_submitter.config import Config
from flame_submitter.deadline.submit import (
    ClipRequest,
    SubmissionIncomplete,
    SubmissionUncertain,
    SubmitError,
    deadline_client,
    plan,
    preflight_farm,
    submit,
)
from flame_submitter.dialog.model import ClipSummary, SubmitChoice, SubmitResult
from flame_submitter.flame.media import FlameSource, SelectionError, direct_pattern, export_source
from flame_submitter.preview.local import PROGRESS_LINE

logger = logging.getLogger(__name__)

OUTPUT_EXTENSIONS = {"exr": "exr", "dpx": "dpx", "png": "png", "tiff": "tif"}  # by the dialog's format choice
FORMAT_OF_EXTENSION = {"exr": "exr", "dpx": "dpx", "png": "png", "tif": "tiff", "tiff": "tiff"}

RESULT_POLL_SECONDS = 1


def clip_summary(source: FlameSource, is_shared: Optional[Callable[[str], bool]] = None) -> ClipSummary:
    """What the dialog shows of a source (its frame numbers; marks as frame numbers, both included), with the
    format its results take with the output format "source": its own image sequence's when the farm reads it
    in place (``is_shared``; None: everywhere, as for a local run), else EXR (it is exported as EXR)."""
    first, last = source.frames[0], source.frames[-1]
    marks = None
    if source.clip_marks:
        marks = (first + source.clip_marks[0] - 1, first + source.clip_marks[1] - 2)
    in_place = source.pattern if source.pattern and (is_shared is None or is_shared(source.pattern)) else None
    extension = source_output_extension(in_place) if in_place else "exr"
    return ClipSummary(name=source.name, first_frame=first, last_frame=last, has_marks=marks is not None,
                       mark_in=marks[0] if marks else None, mark_out=marks[1] if marks else None,
                       width=source.width, height=source.height, fps=source.fps or 0.0,
                       source_format=FORMAT_OF_EXTENSION.get(extension, ""), positioner=source.positioner)


def shared_check(config: Config) -> Callable[[str], bool]:
    return lambda path: under_any(path, config.shared_roots, config.workstation_os) or is_mapped(
        path, config.path_mappings, config.workstation_os)


def output_extension(choice: SubmitChoice, source_pattern: str) -> str:
    """The output's extension: the chosen format's, or for "source" the plate's own (EXR for an exported one,
    or for a movie or any format comfyfarm does not write)."""
    if choice.output_format:
        return OUTPUT_EXTENSIONS[choice.output_format]
    return source_output_extension(source_pattern)


def source_output_extension(source_pattern: str) -> str:
    """The extension of the results of a plate at ``source_pattern`` with the output format "source": the
    plate's own, or EXR for a movie or any format comfyfarm does not write."""
    extension = FramePattern.parse(source_pattern, role="input").extension.lower()
    return extension if extension in OUTPUT_EXTENSIONS.values() or extension == "tiff" else "exr"


def frames_on_disk(flame: Any, sources: Sequence[FlameSource], choice: SubmitChoice,
                   config: Config) -> List[ClipRequest]:
    """Main thread: each source's frames as a pattern the farm can read (exporting when needed)."""
    if not config.jobs_root:
        raise SubmitError("no jobs root configured: set jobs_root (COMFYFARM_JOBS_ROOT) to a folder on shared "
                          "storage that the farm can read")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = Path(config.jobs_root).expanduser()
    project = str(getattr(flame.projects.current_project, "name", "") or "")
    requests = []
    for source in sources:
        summary = clip_summary(source)
        frames = choice.frames_for(summary)
        if not frames:
            raise SelectionError(f"'{source.name}' has no frame in the chosen range: pick all, marks, or frames "
                                 f"within {summary.first_frame}-{summary.last_frame}")
        pattern = direct_pattern(source, shared_check(config))
        if pattern is None:
            relative = (frames[0] - summary.first_frame + 1, frames[-1] - summary.first_frame + 2)
            exported = dataclasses.replace(source, marks=relative, frames=tuple(range(frames[0], frames[-1] + 1)))
            pattern = export_source(flame, exported, root / "input" / f"{stamp}_{source.name}")
        render = f"{source.name}_{choice.workflow}"
        output = root / "output" / f"{stamp}_{render}" / f"{render}.####.{output_extension(choice, pattern)}"
        relink = RelinkIdentity(project=project, library=config.flame_library, clip_name=source.name,
                                clip_uid=source.uid or source.wiretap_id, user=config.deadline_user or None)
        requests.append(ClipRequest(source.name, pattern, frames, str(output), relink))
    return requests


def submit_in_background(requests: Sequence[ClipRequest], choice: SubmitChoice, config: Config) -> SubmitResult:
    """Off the main thread: plan, check the farm, write the job folders and submit. Never raises."""
    try:
        package = load_package(choice.workflow_path)
        template = choice.job_template(list(config.job_templates_dirs))
        jobs = plan(requests, workflow=package, parameters=choice.parameters, template=template, config=config)
        client = deadline_client(config)
        preflight_farm(client, template, jobs)
        ids = submit(jobs, client)
    except (BadInput, SubmissionIncomplete, SubmissionUncertain) as exc:  # what to change, or which jobs exist
        return SubmitResult(error=str(exc))
    except ComfyfarmError as exc:  # the Web Service, or the job folder on shared storage
        return SubmitResult(error=f"Nothing was submitted: {exc}")
    except Exception as exc:  # the artist gets words, the log gets the traceback
        logger.exception("comfyfarm: submission failed")
        return SubmitResult(error=f"Nothing was submitted: an unexpected error ({exc!r}); see the shell's log")
    names = ", ".join(r.name for r in requests)
    scheduled = jobs[0].scheduling if jobs else None
    chosen = "".join(f"; {note}" for note in (scheduled.notes() if scheduled is not None else []))
    return SubmitResult(job_ids=tuple(ids), message=f"{len(ids)} Deadline job(s) submitted for {names}{chosen}")


def start_submission(flame: Any, sources: Sequence[FlameSource], choice: SubmitChoice, config: Config,
                     on_done: Callable[[SubmitResult], None], *,
                     worker: Optional[Callable[..., SubmitResult]] = None) -> Optional[threading.Thread]:
    """Export on the main thread, submit in a thread, call ``on_done`` from an idle event when it ends. Every
    outcome reaches ``on_done``, a failed export too (the dialog waits for it): nothing here raises."""
    try:
        requests = frames_on_disk(flame, sources, choice, config)
    except BadInput as exc:
        on_done(SubmitResult(error=str(exc)))
        return None
    except ComfyfarmError as exc:  # Flame could not export (ExportError), or the input folder cannot be written
        on_done(SubmitResult(error=f"Nothing was submitted: {exc}"))
        return None
    except Exception as exc:  # the artist gets words, the log gets the traceback
        logger.exception("comfyfarm: the frames for the farm could not be prepared")
        on_done(SubmitResult(error=f"Nothing was submitted: an unexpected error while preparing the frames "
                                   f"({exc!r}); see the shell's log"))
        return None
    answers: queue.Queue[SubmitResult] = queue.Queue()
    run = worker or submit_in_background
    thread = threading.Thread(target=lambda: answers.put(run(requests, choice, config)),
                              name="comfyfarm-submit", daemon=True)
    thread.start()

    def deliver() -> None:
        try:
            result = answers.get_nowait()
        except queue.Empty:
            flame.schedule_idle_event(deliver, RESULT_POLL_SECONDS)
            return
        on_done(result)

    flame.schedule_idle_event(deliver, 0)
    return thread


def local_requests(flame: Any, sources: Sequence[FlameSource], choice: SubmitChoice,
                   config: Config) -> List[ClipRequest]:
    """Main thread: the frames of a local run, exported under the scratch folder when needed."""
    local = dataclasses.replace(config, jobs_root=str(config.scratch / "flame"), shared_roots=("/",))
    return frames_on_disk(flame, sources, choice, local)


def run_locally(requests: Sequence[ClipRequest], choice: SubmitChoice, *,
                progress: Callable[[float, str], None], stop: threading.Event, launcher: Sequence[str],
                env: Optional[Mapping[str, str]] = None, gpus: Sequence[str] = ()) -> SubmitResult:
    """Off the main thread: ``comfyfarm run-local`` for each clip, with progress; ``stop`` interrupts it.
    ``launcher`` runs the comfyfarm command (``launch.comfyfarm_command``: inside Flame, never
    ``sys.executable``, which is Flame), in ``env`` (``launch.clean_environment``: without Flame's paths).
    ``gpus`` (the configuration's): one ComfyUI per GPU listed."""
    done: List[str] = []
    for index, request in enumerate(requests):
        command = [*launcher, "run-local", "--workflow", choice.workflow_path,
                   "--input", request.pattern, "--frames", format_frame_list(request.frames),
                   "--output", request.output_pattern, *[a for s in choice.set_arguments() for a in ("--set", s)]]
        if choice.template_overrides.get("chunk_size"):
            command += ["--chunk-size", str(choice.template_overrides["chunk_size"])]
        if choice.output_format:
            command += ["--format", choice.output_format]
        if choice.exr_layers:
            command.append("--exr-layers")
        if gpus:
            command += ["--gpus", ",".join(str(g) for g in gpus)]
        try:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                       env=dict(env) if env is not None else None, close_fds=True,
                                       stdin=subprocess.DEVNULL)
        except OSError as exc:
            return SubmitResult(error=f"comfyfarm could not be started ({command[0]}): {exc}")
        threading.Thread(target=_interrupt_on, args=(stop, process), daemon=True).start()
        tail: List[str] = []
        assert process.stderr is not None
        for line in process.stderr:
            tail = (tail + [line.rstrip()])[-5:]
            match = PROGRESS_LINE.search(line)
            if match:
                fraction = (index + int(match.group(1)) / int(match.group(2))) / len(requests)
                progress(fraction, f"{request.name}: {match.group(1)}/{match.group(2)} frames")
        code = process.wait()
        if stop.is_set():
            return SubmitResult(error=f"Stopped: {', '.join(done) or 'no clip'} finished; finished frames are kept")
        if code != 0:
            reason = next((t.split("run-local: ", 1)[1] for t in reversed(tail) if "run-local: " in t), tail[-1:])
            return SubmitResult(error=f"{request.name} did not finish locally: {reason}")
        done.append(request.name)
    return SubmitResult(message=f"Rendered {', '.join(done)} locally; importing into Flame")


def _interrupt_on(stop: threading.Event, process: subprocess.Popen) -> None:
    """Ctrl-C for run-local when the artist presses Stop: it interrupts ComfyUI and keeps finished frames."""
    while process.poll() is None:
        if stop.wait(0.2):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            return
