"""``comfyfarm preview``: one frame of a workflow (a short window for a sequence workflow), as pictures for the screen.

The submit dialog's Preview button runs it as a subprocess (Flame's Python cannot load OpenImageIO)::

    comfyfarm preview --workflow NAME|PATH --input PATTERN --frame N --folder DIR
                      [--set KEY=VALUE]... [--format exr|dpx|png|tiff] [--exr-layers] [--width PX]
                      [run-local's ComfyUI and colour options] [--rendered OUTPUT_PATTERN]

- The frames: :func:`~flame_submitter.preview.request.preview_frames` of ``N`` within the plate's frames on disk.
- Without ``--rendered`` they are rendered as ``run-local`` renders them with the same options (the same job
  record, the same ComfyUI: started here, or ``--comfyui-url``), in one chunk, into ``DIR/render/``, which is
  emptied first: a preview never keeps frames an earlier preview rendered with other settings. The output format
  is ``--format``'s, else the plate's.
- ``--rendered`` names where a job rendered them, and nothing is rendered: the job's output pattern, as its record
  holds it (``output.pattern``): the files of a one-pass job, or of a job that writes its passes as EXR layers;
  each pass of another several-pass job is beside it as run-local and the farm name it (``pass_patterns``:
  ``sh010.####.exr`` gives ``sh010_depth.####.exr``). Its output frames are numbered as a job of the preview's
  frames numbers them (the farm's preview job renders those frames).
- The pictures, JPEGs written atomically over the last preview's: ``DIR/source.jpg``, the plate's frame ``N`` as
  a viewer shows it (sRGB from the plate's colour space), and ``DIR/<pass>.jpg`` for each pass, of the output frame
  of ``N`` (``retime``: the frame ``N`` itself unless the workflow changes the frame count), as the contact sheet
  shows it (``display_pixels``: a data pass its values). ``--width`` pixels wide at most; a pass of the plate's size
  has the source's.
- Progress on stderr: run-local's progress lines (``<workflow> [###---] 3/24 frames …``).
- The last line on stdout is ``RESULT_PREFIX`` and the :class:`PreviewResult` as JSON, with ``error`` set when it
  failed; then also one line ``comfyfarm preview: <error>`` on stderr and the exit status of the error's
  category (``farm_plugin.errors.exit_code``). Ctrl-C (or SIGTERM) interrupts ComfyUI, stops the one it started,
  exits 130.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from farm_plugin.comfyui.server import ComfyUIServer
from farm_plugin.completion.contact_sheet import write_thumbnail
from farm_plugin.errors import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, Cancelled, ComfyfarmError, ServiceError, exit_code
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.frames.image_io import probe, writable_format
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import JobRecord, job_retime, layered, output_frames, pass_patterns, read_job_record
from farm_plugin.runner.local import LocalRun, LocalServer
from farm_plugin.runner.progress import ProgressSink
from flame_submitter.cli import run_local as cli_run_local
from flame_submitter.cli.progress_bar import ProgressBar
from flame_submitter.config import Config, load_config
from flame_submitter.jobs.record import clip_name, load_workflow, requested_frames
from flame_submitter.preview.request import (
    PREVIEW_WIDTH,
    RESULT_PREFIX,
    PreviewError,
    PreviewImage,
    PreviewResult,
    preview_frames,
)

logger = logging.getLogger(__name__)

RENDER_FOLDER = "render"  # DIR/render/: the frames a preview renders
SOURCE_PICTURE = "source"  # DIR/source.jpg
EIGHT_BIT_STATUS = "8-bit path"  # how the chunk runner's status begins when the frames lose precision (binding)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class PreviewFailed(ServiceError):
    """The preview's render did not finish: ComfyUI's own error, or the frames it did not write."""


@dataclass(frozen=True)
class PreviewPlan:
    """What a preview shows: the job record of its frames, the source ``frame`` and its output frame, and where
    each pass's frames are (or will be) read."""

    record: JobRecord
    frame: int
    output_frame: int
    patterns: Dict[str, FramePattern]
    arguments: argparse.Namespace  # run-local's arguments for the record (ComfyUI's choice among them)


@dataclass(frozen=True)
class Rendered:
    seconds: float
    where: str
    warnings: Tuple[str, ...]
    startup_seconds: float = 0.0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "preview",
        help="render one frame of a workflow (a window for a sequence workflow) and write JPEGs of it",
        description="Render one frame with a workflow as run-local would (or take the frames a job rendered: "
                    "--rendered) and write JPEGs of the source frame and of each pass, for the submit dialog's "
                    f"preview. The last line on stdout is '{RESULT_PREFIX}' and the result as JSON.",
    )
    cli_run_local.add_input_arguments(parser)
    parser.add_argument("--frame", required=True, type=int, metavar="N", help="the source frame to preview")
    parser.add_argument("--folder", required=True, metavar="DIR",
                        help="where the pictures go (DIR/source.jpg, DIR/<pass>.jpg) and the frames are rendered "
                             f"(DIR/{RENDER_FOLDER}/, emptied first)")
    parser.add_argument("--width", type=int, default=PREVIEW_WIDTH, metavar="PX",
                        help=f"the pictures' width at most (default {PREVIEW_WIDTH})")
    parser.add_argument("--rendered", metavar="OUTPUT_PATTERN",
                        help="render nothing: make the pictures of the frames a job rendered at its output pattern "
                             "(e.g. out/sh010.####.exr; each pass of a several-pass job beside it: "
                             "out/sh010_<pass>.####.exr)")
    cli_run_local.add_render_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with _terminate_as_interrupt():
        return _run(args)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a dialog that closes) stops the preview as Ctrl-C does: ComfyUI is interrupted, the one started
    here stopped (it runs in a session of its own, which no signal to this process reaches)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    plan: Optional[PreviewPlan] = None
    try:
        config = load_config()
        plan = plan_preview(args, config)
        rendered = Rendered(0.0, "", ()) if args.rendered else render(plan, config, preview_folder(args))
        source, passes = write_pictures(plan, preview_folder(args), width=args.width)
    except ComfyfarmError as exc:
        return fail(args, plan, str(exc), exit_code(exc))
    except KeyboardInterrupt:
        return fail(args, plan, "stopped: no preview", EXIT_CANCELLED)
    except Exception as exc:  # the dialog shows the one line; the traceback is in the debug log (-v)
        logger.debug("preview failed", exc_info=True)
        return fail(args, plan, f"unexpected error: {type(exc).__name__}: {exc}", EXIT_FAILED)
    result = PreviewResult(frame=plan.frame, frames=tuple(plan.record.source.frames), seconds=rendered.seconds,
                           startup_seconds=rendered.startup_seconds, where=rendered.where, source=source,
                           passes=passes, warnings=rendered.warnings)
    print(RESULT_PREFIX + result.to_json(), flush=True)
    return EXIT_OK


def fail(args: argparse.Namespace, plan: Optional[PreviewPlan], message: str, status: int) -> int:
    """One line on stderr, the result with its ``error`` as stdout's last line; returns ``status``."""
    print(f"comfyfarm preview: {message}", file=sys.stderr, flush=True)
    frames = tuple(plan.record.source.frames) if plan is not None else ()
    print(RESULT_PREFIX + PreviewResult(frame=args.frame, frames=frames, error=message).to_json(), flush=True)
    return status


def preview_folder(args: argparse.Namespace) -> Path:
    return Path(args.folder).expanduser().absolute()


def plan_preview(args: argparse.Namespace, config: Config) -> PreviewPlan:
    """Check what the user gave, before anything starts, and plan the preview: its frames and its job record."""
    if args.width < 1:
        raise PreviewError(f"--width {args.width}: the pictures are at least 1 pixel wide")
    package = load_workflow(args.workflow, config.workflows_dirs)
    source = FramePattern.parse(args.input, role="input")
    found = requested_frames(None, source)  # every frame on disk; none: the error says so
    if args.frame in found:
        frames = preview_frames(package, args.frame, found[0], found[-1])
    elif found[0] <= args.frame <= found[-1]:
        raise PreviewError(f"frame {args.frame} is not on disk in {source.to_hashes()} (frames "
                           f"{format_frame_list(found)}): choose a frame that is there")
    else:
        frames = preview_frames(package, args.frame, found[0], found[-1])  # raises: the frame is outside the clip
    rendered = FramePattern.parse(args.rendered, role="output") if args.rendered else None
    output = render_pattern(preview_folder(args), clip_name(source, package), source, rendered, args.format)
    job = argparse.Namespace(**{**vars(args), "frames": format_frame_list(frames), "output": output})
    record = cli_run_local.build_record(job, config, package)
    retime = job_retime(record)
    owned = retime.outputs_of(args.frame)
    # A decimation drops some source frames: the kept frame before it stands for it (a window starts on one).
    output_frame = owned[0] if owned else max(f for f in retime.output_frames() if retime.source_of(f) <= args.frame)
    return PreviewPlan(record=record, frame=args.frame, output_frame=output_frame,
                       patterns=pass_patterns(record, args.rendered), arguments=job)


def render_pattern(folder: Path, name: str, source: FramePattern, rendered: Optional[FramePattern],
                   file_format: Optional[str]) -> str:
    """``DIR/render/<clip>.####.<ext>``: the extension of ``--rendered`` (what the job wrote), else ``--format``'s,
    else the plate's (``exr`` where comfyfarm cannot write the plate's format)."""
    if rendered is not None:
        extension = rendered.extension
    elif file_format:
        extension = cli_run_local.FORMAT_EXTENSIONS[file_format][0]
    else:
        extension = source.extension if writable_format(source.path(0)) else "exr"
    return str(folder / RENDER_FOLDER / f"{name}.####.{extension}")


class _PreviewProgress(ProgressSink):
    """Counts frames on run-local's progress bar, and keeps the warnings the dialog shows."""

    def __init__(self, bar: ProgressBar) -> None:
        self.bar = bar
        self.warnings: List[str] = []

    def frame_done(self, frame: int, *, skipped: bool = False) -> None:
        self.bar.frame_done(skipped=skipped)

    def status(self, text: str) -> None:
        if text.startswith(EIGHT_BIT_STATUS) and text not in self.warnings:
            self.warnings.append(text)


def render(plan: PreviewPlan, config: Config, folder: Path) -> Rendered:
    """Render the preview's frames into ``DIR/render/`` (emptied first) on one ComfyUI, as run-local would.
    Raises PreviewFailed with ComfyUI's own error, Cancelled on Ctrl-C, or what run-local raises."""
    record = plan.record
    job_dir = config.scratch / "jobs" / record.job_id
    servers = cli_run_local.build_servers(plan.arguments, config, job_dir, 1, command="preview")[:1]
    cli_run_local.check_devices(servers)
    clear_render_folder(folder / RENDER_FOLDER)
    record = read_job_record(cli_run_local.write_record(record, job_dir, config))
    wanted = output_frames(record)
    progress = _PreviewProgress(ProgressBar(len(wanted), label=record.workflow.name))
    local = LocalRun(record, servers, scratch_dir=job_dir, progress_for=lambda _index: progress,
                     restart_limit=config.restart_limit, idle_timeout_s=config.idle_timeout_s)
    try:
        local.start_servers()
        where = describe(servers)
        frames = record.source.frames
        window = f" (frames {format_frame_list(frames)})" if len(frames) > 1 else ""
        print(f"comfyfarm preview: rendering frame {plan.frame}{window} on {where} (started in "
              f"{local.report.startup_seconds:.1f} s)", file=sys.stderr, flush=True)
        report = local.run([list(frames)])
    finally:
        local.stop_servers()
        progress.bar.finish()
    if report.cancelled:
        raise Cancelled("stopped: ComfyUI was interrupted; no preview")
    if report.failures:
        raise PreviewFailed(report.failures[0])
    missing = {name: pattern.missing_frames(wanted) for name, pattern in pass_patterns(record).items()}
    missing = {name: frames for name, frames in missing.items() if frames}
    if missing:
        raise PreviewFailed("ComfyUI did not write " + "; ".join(f"frames {format_frame_list(frames)} of the {name} "
                                                                 "pass" for name, frames in missing.items())
                            + f": see ComfyUI's log in {job_dir}")
    shutil.rmtree(job_dir, ignore_errors=True)  # kept when it failed: ComfyUI's log is there
    return Rendered(report.processing_seconds, where, tuple(progress.warnings), report.startup_seconds)


def clear_render_folder(folder: Path) -> None:
    try:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    except OSError as exc:
        raise PreviewError(f"cannot empty the preview's render folder {folder} ({exc.strerror or exc}): choose a "
                           "--folder you can write to") from exc


def describe(servers: Sequence[LocalServer]) -> str:
    """What renders: ``1 ComfyUI on GPU 0`` (on the CPU, on the default GPU) or ``the local ComfyUI at <url>``."""
    server = servers[0]
    if isinstance(server, ComfyUIServer):
        if "--cpu" in server.config.extra_args:
            return "1 ComfyUI on the CPU"
        gpu = server.config.gpu_devices
        return f"1 ComfyUI on GPU {gpu}" if gpu is not None else "1 ComfyUI on the default GPU"
    url = str(getattr(server, "url", ""))
    return f"the {'local ' if urlsplit(url).hostname in LOCAL_HOSTS else ''}ComfyUI at {url}"


def write_pictures(plan: PreviewPlan, folder: Path, *, width: int) -> Tuple[PreviewImage, Tuple[PreviewImage, ...]]:
    """``DIR/source.jpg`` and ``DIR/<pass>.jpg`` of each pass, written atomically. Raises PreviewError where a
    pass's frame is not there, ContactSheetError where a picture cannot be made."""
    record = plan.record
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PreviewError(f"cannot make the preview folder {folder} ({exc.strerror or exc}): choose a --folder you "
                           "can write to") from exc
    names = [spec.name for spec in record.workflow.passes]
    source_path = FramePattern.parse(record.source.pattern).path(plan.frame)
    source = _picture(record, SOURCE_PICTURE, source_path, folder / f"{SOURCE_PICTURE}.jpg", plan.frame,
                      width=width, data=False, names=names, layers=False)
    passes = []
    for spec in record.workflow.passes:
        pattern = plan.patterns[spec.name]
        path = pattern.path(plan.output_frame)
        if not Path(path).is_file():
            raise PreviewError(f"frame {plan.output_frame} of the {spec.name} pass is not at {pattern.to_hashes()}: "
                               "render the preview first (leave out --rendered), or name where the job wrote it")
        target = folder / f"{spec.name if spec.name != SOURCE_PICTURE else 'source_pass'}.jpg"
        passes.append(_picture(record, spec.name, path, target, plan.output_frame, width=width, data=spec.data,
                               names=names, layers=layered(record)))
    return source, tuple(passes)


def _picture(record: JobRecord, name: str, path: str, target: Path, frame: int, *, width: int, data: bool,
             names: Sequence[str], layers: bool) -> PreviewImage:
    """One JPEG, ``width`` pixels wide at most (a smaller frame keeps its size)."""
    wide = min(width, probe(path).width)
    write_thumbnail(path, target, pass_name=name, pass_names=names, layers=layers, data=data,
                    plate_space=record.colour.plate_space, config=record.colour.config, width=wide)
    return PreviewImage(name=name, path=str(target), frame=frame)

