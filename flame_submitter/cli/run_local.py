"""``comfyfarm run-local``: a job on this machine's ComfyUI instances, no farm."""

from __future__ import annotations

import argparse
import logging
import secrets
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, List, Optional, Sequence, cast

from farm_plugin.comfyui.devices import TorchDevices, probe_devices
from farm_plugin.comfyui.errors import ComfyUIError, ComfyUIStartError
from farm_plugin.comfyui.server import (
    ATTACH_TIMEOUT_SECONDS,
    ComfyUIServer,
    ExternalServer,
    ServerConfig,
    default_python,
)
from farm_plugin.errors import EXIT_CANCELLED, EXIT_FAILED, ComfyfarmError, UsageError, exit_code
from farm_plugin.frames.framelist import chunk_frames, format_frame_list
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import JobRecord, layered, output_frames, pass_patterns, read_job_record
from farm_plugin.runner.local import LocalRun, LocalRunReport, LocalServer
from farm_plugin.runner.preflight import check_clip, check_colour, check_pass_formats
from farm_plugin.workflow.package import WorkflowPackage
from farm_plugin.workflow.params import parse_assignments, resolve_parameters
from flame_submitter.cli.progress_bar import ProgressBar
from flame_submitter.config import Config, load_config
from flame_submitter.jobs.record import (
    check_workflow,
    clip_name,
    colour_spec,
    job_record,
    load_workflow,
    requested_frames,
    source_clip,
    workflow_spec,
)

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = ("exr", "dpx", "png", "tiff")
FORMAT_EXTENSIONS = {"exr": ("exr",), "dpx": ("dpx",), "png": ("png",), "tiff": ("tif", "tiff")}

def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "run-local",
        help="run a workflow over a frame sequence on this machine's ComfyUI instances",
        description="Run a workflow over a frame sequence on local ComfyUI instances (no farm).",
    )
    add_job_arguments(parser)
    parser.set_defaults(run=run)


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--frames", metavar="LIST", help="frames in Deadline's syntax (1001-1100, 1-100x2, 1,5,10-20); "
                        "default: every frame of --input on disk")
    parser.add_argument("--output", required=True, metavar="PATTERN", help="results, e.g. out/result.####.exr")
    parser.add_argument("--chunk-size", type=int, metavar="N", help="frames per chunk (default: config, 10)")
    add_render_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workflow`` and ``--input``: what runs on which plate (run-local's, and ``comfyfarm preview``'s)."""
    parser.add_argument("--workflow", required=True, metavar="NAME|PATH", help="a workflow package name or folder")
    parser.add_argument("--input", required=True, metavar="PATTERN", help="source frames, e.g. plate.####.exr")


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """How the frames are rendered, and on which ComfyUI: the parameters, the output format, the ComfyUI options and
    the colour spaces (run-local's, and ``comfyfarm preview``'s, which renders as run-local would)."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a workflow parameter")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--instances", type=int, metavar="N", help="ComfyUI instances to start (default: config, 1)")
    where.add_argument("--gpus", metavar="0,1,...",
                       help="one ComfyUI per listed GPU (CUDA_VISIBLE_DEVICES; default: config gpus)")
    parser.add_argument("--cpu", action="store_true",
                        help="run ComfyUI on the CPU (much slower; for a machine without a GPU)")
    parser.add_argument("--comfyui-dir", metavar="DIR", help="the ComfyUI folder to start instances from")
    parser.add_argument("--comfyui-python", metavar="PY", help="the Python that runs ComfyUI (default: its venv)")
    parser.add_argument("--comfyui-url", action="append", default=[], metavar="URL",
                        help="attach to a running ComfyUI instead of starting one (may repeat)")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, help="output file format (default: the source's)")
    parser.add_argument("--exr-layers", action="store_true",
                        help="a workflow with several passes writes them as the layers of one EXR per frame at "
                             "the output (the first pass as R,G,B(,A), each other as <pass>.R ...), not as a "
                             "sequence each; needs an .exr output")
    parser.add_argument("--ocio-config", metavar="CONFIG", help="OCIO config (default: config, ocio://default)")
    parser.add_argument("--plate-space", metavar="NAME", help="the plates' colour space (default: from the plate)")
    parser.add_argument("--working-space", metavar="NAME", help="the colour space the workflow sees")


def build_record(args: argparse.Namespace, config: Config, package: Optional[WorkflowPackage] = None) -> JobRecord:
    """Check everything the user gave (before any ComfyUI starts) and build the job record. ``package``: the
    workflow of ``--workflow``, where the caller has loaded it already."""
    if package is None:
        package = load_workflow(args.workflow, config.workflows_dirs)
    check_workflow(package)
    values = resolve_parameters(package, parse_assignments(args.set))
    source = FramePattern.parse(args.input, role="input")
    output = FramePattern.parse(args.output, role="output")
    if args.format and output.extension.lower() not in FORMAT_EXTENSIONS[args.format]:
        raise UsageError(f"--format {args.format} but the output pattern ends in '.{output.extension}': name the "
                         f"output *.{FORMAT_EXTENSIONS[args.format][0]}, or leave out --format")
    frames = requested_frames(args.frames, source)
    plate = check_clip(source, output, frames)
    workflow = workflow_spec(package, values)
    exr_layers = bool(getattr(args, "exr_layers", False))  # --exr-layers; a Namespace built without it: off
    check_pass_formats(workflow, output, plate, file_format=args.format, exr_layers=exr_layers)
    if exr_layers and not workflow.several_passes:
        logger.warning("--exr-layers: workflow %s writes one pass: nothing to layer, its output is as without it",
                       package.name)
    colour = colour_spec(config.ocio_config, config.working_space, user_ocio_config=args.ocio_config,
                         user_plate_space=args.plate_space, user_working_space=args.working_space)
    check_colour(plate, config=colour.config, plate_space=args.plate_space, working_space=args.working_space)
    clip = source_clip(clip_name(source, package), args.input, frames, args.output, plate,
                       colourspace=args.plate_space)
    return job_record(clip, job_id=f"{package.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}",
                      name=f"{clip.name} {package.title}", workflow=workflow, colour=colour,
                      file_format=args.format, exr_layers=exr_layers)


def build_servers(args: argparse.Namespace, config: Config, scratch: Path, chunks: int, *,
                  command: str = "run-local") -> List[LocalServer]:
    """The ComfyUIs to run ``chunks`` chunks on: those of ``--comfyui-url`` (or the config's), else those to start
    (one per GPU, or ``--instances``, at most one per chunk). ``command`` names the command in messages."""
    urls = list(args.comfyui_url) or list(config.comfyui_urls)
    if urls and args.cpu:
        raise UsageError(f"--cpu starts ComfyUI on the CPU, but {command} attaches to the running ComfyUI at "
                         f"{urls[0]}: start that one with --cpu, or leave out --comfyui-url")
    if urls:
        timeout_s = min(config.startup_timeout_s, ATTACH_TIMEOUT_SECONDS)
        return [ExternalServer(url.rstrip("/"), timeout_s) for url in urls]
    comfyui_dir = args.comfyui_dir or config.comfyui_dir
    if not comfyui_dir:
        raise UsageError(
            "no ComfyUI to run on: pass --comfyui-dir DIR (or --comfyui-url URL), set COMFYUI_DIR, or put "
            f"comfyui_dir: in the config file ({config.source})"
        )
    folder = Path(comfyui_dir).expanduser()
    if not (folder / "main.py").is_file():
        raise UsageError(f"--comfyui-dir {folder} is not a ComfyUI folder (no main.py): point it at your ComfyUI "
                         "checkout")
    gpus: List[Optional[str]]
    if args.cpu and args.gpus:
        raise UsageError(f"--cpu and --gpus {args.gpus}: choose one (--instances N sets how many CPU instances)")
    if args.gpus is not None:
        gpus = [g.strip() for g in args.gpus.split(",") if g.strip()]
        if not gpus:
            raise UsageError(f"--gpus '{args.gpus}' names no GPU: list GPU indices like 0,1, or leave out --gpus")
    elif config.gpus and args.instances is None and not args.cpu:
        gpus = list(config.gpus)
    else:
        count = args.instances if args.instances is not None else config.instances
        if count < 1:
            raise UsageError(f"--instances {count}: run at least 1 instance")
        gpus = [None] * count
    gpus = gpus[:max(1, chunks)]
    python = args.comfyui_python or config.comfyui_python or default_python(folder)
    extra_args = tuple(config.comfyui_args) + (("--cpu",) if args.cpu and "--cpu" not in config.comfyui_args else ())
    return [
        ComfyUIServer(ServerConfig(
            comfyui_dir=folder, port=config.base_port + index, python=python, gpu_devices=gpu,
            extra_args=extra_args, extra_env=config.comfyui_env,
            scratch_dir=scratch / f"comfyui-{index}", startup_timeout_s=config.startup_timeout_s,
            port_in_use="next",
        ))
        for index, gpu in enumerate(gpus)
    ]


def probe_servers(servers: Sequence[LocalServer]) -> Optional[TorchDevices]:
    """What torch in the Python of the ComfyUI that run-local would start sees; None where it does not ask.

    It does not ask when it attaches to a running ComfyUI, or when ComfyUI runs with ``--cpu``.
    """
    managed = [server for server in servers if isinstance(server, ComfyUIServer)]
    if not managed or "--cpu" in managed[0].config.extra_args:
        return None
    config = managed[0].config
    python = config.python or default_python(config.comfyui_dir)
    environment = ComfyUIServer(replace(config, gpu_devices=None)).environment()
    try:
        return probe_devices(python, config.comfyui_dir, environment)
    except ComfyUIStartError as exc:  # the Python it was given cannot run ComfyUI: nothing started, so bad input
        raise UsageError(str(exc)) from exc


def check_devices(servers: Sequence[LocalServer]) -> None:
    """Refuse, before anything starts, to start ComfyUI on GPUs that its Python does not see."""
    devices = probe_servers(servers)
    if devices is None:
        return
    python = cast(ComfyUIServer, servers[0]).config.python
    if not devices.has_gpu:
        raise UsageError(f"ComfyUI's Python {python} sees no GPU (torch {devices.torch_version} finds no CUDA "
                         "device): pass --cpu to run on the CPU (much slower), or install the NVIDIA driver and a "
                         "CUDA build of torch into that Python")
    wanted = [cast(ComfyUIServer, server).config.gpu_devices for server in servers]
    missing = [gpu for gpu in wanted if gpu is not None and gpu.isdigit() and int(gpu) >= devices.cuda_devices]
    if devices.cuda and missing:
        raise UsageError(f"GPU {', '.join(missing)} does not exist: ComfyUI's Python sees {devices.cuda_devices} "
                         f"CUDA GPU(s), numbered from 0: list those in --gpus (or gpus: in the config)")


def write_record(record: JobRecord, job_dir: Path, config: Config) -> Path:
    """The job record in its folder under the scratch folder; nothing of that folder stays when it fails."""
    try:
        return record.write(job_dir / "job.json")
    except OSError as exc:
        shutil.rmtree(job_dir, ignore_errors=True)
        raise UsageError(f"cannot write the job record into the scratch folder {config.scratch} "
                         f"({exc.strerror or exc}): set scratch_dir (now from "
                         f"{config.origins.get('scratch_dir', 'the default')}) to a folder you can write to, with free "
                         "space") from exc


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config()
        record = build_record(args, config)
        chunk_size = args.chunk_size if args.chunk_size is not None else config.chunk_size
        if chunk_size < 1:
            raise UsageError(f"--chunk-size {chunk_size}: use at least 1 frame per chunk")
        chunks = chunk_frames(list(record.source.frames), chunk_size)
        job_dir = config.scratch / "jobs" / record.job_id
        servers = build_servers(args, config, job_dir, len(chunks))
        check_devices(servers)
        record = read_job_record(write_record(record, job_dir, config))
    except ComfyfarmError as exc:  # found before any work started
        print(f"comfyfarm run-local: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("comfyfarm run-local: interrupted before anything started; nothing was written", file=sys.stderr)
        return EXIT_CANCELLED
    return execute(record, servers, chunks, job_dir=job_dir, config=config, quiet=args.quiet)


def execute(record: JobRecord, servers: Sequence[LocalServer], chunks: List[List[int]], *, job_dir: Path,
            config: Config, quiet: bool) -> int:
    frames = output_frames(record)
    bar = ProgressBar(len(frames), label=record.workflow.name, enabled=not quiet)
    local = LocalRun(record, servers, scratch_dir=job_dir, progress_for=lambda _i: bar.sink(),
                     restart_limit=config.restart_limit, idle_timeout_s=config.idle_timeout_s)
    try:
        local.start_servers()
    except ComfyUIError as exc:
        print(f"comfyfarm run-local: {exc}", file=sys.stderr)
        return exit_code(exc)
    print(f"comfyfarm: {len(record.source.frames)} frame(s) in {len(chunks)} chunk(s) on {len(servers)} ComfyUI "
          f"instance(s)" + (f", {len(frames)} frame(s) out" if len(frames) != len(record.source.frames) else "") + " "
          f"(started in {local.report.startup_seconds:.1f} s)", file=sys.stderr)
    try:
        report = local.run(chunks)
    finally:
        local.stop_servers()
        bar.finish()
    return summarise(record, report)


def summarise(record: JobRecord, report: LocalRunReport) -> int:
    """The run's last lines: what was written where (each pass of a several-pass job; the one file of a job that
    writes its passes as EXR layers), and what is missing."""
    wanted = output_frames(record)
    passes = pass_patterns(record)
    missing_by_pass = {name: pattern.missing_frames(wanted) for name, pattern in passes.items()}
    missing = sorted(set().union(*missing_by_pass.values()))
    for failure in report.failures:
        print(f"comfyfarm run-local: {failure}", file=sys.stderr)
    rate = len(report.written) / report.processing_seconds if report.processing_seconds else 0.0
    restarts = f"; ComfyUI restarted {report.restarts} time(s)" if report.restarts else ""
    if not record.workflow.several_passes:
        (output,) = passes.values()
        print(f"comfyfarm: {len(report.written)} frame(s) written, {len(report.skipped)} already there, to "
              f"{output.to_hashes()} in {report.processing_seconds:.1f} s ({rate:.1f} frames/s){restarts}",
              file=sys.stderr)
        missing_detail = format_frame_list(missing)
    elif layered(record):  # every pass is a layer of the one file: named once
        output = next(iter(passes.values()))
        print(f"comfyfarm: {len(report.written)} frame(s) written, {len(report.skipped)} already there, in "
              f"{report.processing_seconds:.1f} s ({rate:.1f} frames/s){restarts}; {len(passes)} passes in one file:\n"
              f"  {output.to_hashes()}: passes {', '.join(passes)} as layers ({len(wanted) - len(missing)} frames)",
              file=sys.stderr)
        missing_detail = format_frame_list(missing)
    else:
        print(f"comfyfarm: {len(report.written)} frame(s) written, {len(report.skipped)} already there, in "
              f"{report.processing_seconds:.1f} s ({rate:.1f} frames/s){restarts}; {len(passes)} passes:\n"
              + "\n".join(f"  {name}: {pattern.to_hashes()} ({len(wanted) - len(missing_by_pass[name])} frames)"
                          for name, pattern in passes.items()), file=sys.stderr)
        missing_detail = "; ".join(f"{name}: {format_frame_list(frames)}"
                                   for name, frames in missing_by_pass.items() if frames)
    if report.cancelled:
        print(f"comfyfarm run-local: interrupted; {len(missing)} frame(s) not written "
              f"({missing_detail}): run the same command again to finish them", file=sys.stderr)
        return EXIT_CANCELLED
    if missing:
        print(f"comfyfarm run-local: {len(missing)} frame(s) not written ({missing_detail}): "
              "run the same command again to finish only those", file=sys.stderr)
        return EXIT_FAILED
    return 0
