"""comfyfarm's Deadline plugin: runs a job's chunks on a ComfyUI kept warm on this Worker's GPU(s).

An Advanced plugin (Deadline 10, Python 3), thin over comfyfarm's worker runtime:

- StartJob (once per job per Worker thread): refuse a job record from an incompatible comfyfarm (its
  ``schema`` outside ``JOB_RECORD_SCHEMAS``: record_refusal), set the environment of the processes it starts
  (child_environment), choose the GPU(s) the Redshift way, derive the port, start ComfyUI as a monitored
  managed process bound to 127.0.0.1 with ``CUDA_VISIBLE_DEVICES`` (or attach to ``ExternalServerURL``) and
  wait until it answers, or until the task is canceled. A ComfyUI that does not come up is stopped before
  the task fails. Models then stay loaded for every task of the job. Where the Worker runs comfyfarm's
  service (``WorkerService``, farm_plugin.service) the task's GPU already has a warm ComfyUI, kept across jobs:
  ``python -m farm_plugin.service prepare`` checks it and tidies it (queue, memory and prompt limits, free
  VRAM) and the job uses it; where no service answers, the plugin starts its own as above.
- RenderTasks (per task): make sure ComfyUI runs (a StartJob that was canceled left none; one that exited
  since is restarted; the service's is prepared again: the hygiene between tasks), then run
  ``python -m farm_plugin.runner`` for the task's frames against it; its progress lines (stdout) become
  SetProgress / SetStatusMessage; a ComfyUI that died is restarted
  (``RestartLimit``) and the chunk goes on; failures become FailRender with ComfyUI's node, class and
  exception text. Cancel kills the runner at once (no SIGTERM), so the plugin withdraws the chunk: ComfyUI's
  queue is cleared and interrupted, and half-written output files of every pass are removed.
- MonitoredManagedProcessExit: a ComfyUI that exits on its own is logged; the next step that needs it
  restarts it (above) or fails the task with its log. Without this handler Deadline fails the task at once.
- EndJob: shut down the ComfyUI this plugin started (the service's stays warm for the next job).
- Hand-back jobs (PluginInfo ``Mode=finish``, one task, submitted with every render job and waiting for it
  however it ends): no ComfyUI; the task runs ``python -m farm_plugin.completion.cli`` for the job named by
  ``FinishesJob``, which Deadline says is Completed, Failed (a cancel too), or no longer there (deleted):
  the frames on disk are checked and the completion record is written into the inbox, once (hand_back_arguments).
  It replaces the ComfyUIRelink event, which ran that command inside the event, wherever the event fired.

Manners a Worker expects (Thinkbox's stock plugins, see tests/doubles/test_deadline_runtime_contract.py):
both processes are started with ``UseProcessTree`` and ``TerminateOnExit`` (a custom node's helper process dies
with ComfyUI), without Deadline's library folders in ``LD_LIBRARY_PATH``/``DYLD_*`` (Nuke.py's scrubLibPaths),
and with loopback added to ``no_proxy``: this plugin's own calls to ComfyUI never use a proxy.

Configure Plugins (``ComfyUI.param``) says where ComfyUI and the runtime's Python are; Job Properties
(``ComfyUI.options``) hold the job record and the GPU settings. Only the standard library is used here:
the runtime runs in the Python named by ``PythonExecutable``, not in Deadline's.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from Deadline.Plugins import DeadlinePlugin, PluginType
from Deadline.Scripting import FileUtils, RepositoryUtils, SystemUtils
from FranticX.Processes import ManagedProcess

COMFYFARM_VERSION = "0.1.0"  # the product version (farm_plugin.__version__), shown in every job's log
JOB_RECORD_SCHEMAS = (1, 3)  # the oldest and newest job record schema this plugin and its runtime read
COMFYUI_PROCESS = "ComfyUI"
LOOPBACK = "127.0.0.1"
HEALTH_POLL_SECONDS = 0.25
LOG_TAIL_LINES = 40
PORT_SEARCH_SPAN = 100
PORT_ATTEMPTS = 3
FRAME_NODES_PROBE_SECONDS = 60  # asking the runtime's Python where comfyfarm's frame nodes are
# Where comfyfarm's frame nodes (a ComfyUI custom-nodes folder) are, beside the farm_plugin the runtime imports
FRAME_NODES_PROBE = ("import os, farm_plugin; "
                     "print(os.path.join(os.path.dirname(os.path.abspath(farm_plugin.__file__)), 'ComfyUINodes'))")
EXTRA_PATHS_FILE = "comfyfarm_extra_model_paths.yaml"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# What Thinkbox's Nuke.py (scrubLibPaths) removes Deadline's folders from before it starts a process
LIBRARY_PATH_VARIABLES = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH", "DYLD_FRAMEWORK_PATH",
                          "DYLD_FALLBACK_FRAMEWORK_PATH")
FRAME_TOKEN = re.compile(r"#+|@+|%0?(\d*)d|\$F(\d*)")
PASS_SEPARATORS = "._-"  # farm_plugin.frames.pattern's: what may stand between a name and its frame number

EXIT_OK = 0
EXIT_COMFYUI_LOST = 3
EXIT_NO_SERVICE = 4  # farm_plugin.service prepare: no service answers for the GPU: start our own ComfyUI
SERVICE_OFF = "Off"
EXIT_CANCELLED = 130
# A hand-back job (flame_submitter/jobs/builder.py: HAND_BACK_MODE, FINISHED_JOB_KEY, FINISHED_FRAMES_KEY)
FINISH_MODE = "finish"


def GetDeadlinePlugin():  # noqa: N802 (Deadline's entry point)
    return ComfyUIPlugin()


def CleanupDeadlinePlugin(plugin):  # noqa: N802
    plugin.Cleanup()


# -- pure helpers (no Deadline calls: tested on their own) -------------------------------------------


def parse_devices(text):
    """``"0,2"`` → ``[0, 2]``; blank → ``[]``. Raises ValueError naming a bad entry."""
    devices = []
    for item in re.split(r"[,;\s]+", (text or "").strip()):
        if not item:
            continue
        if not item.isdigit():
            raise ValueError(f"SelectGPUDevices: '{item}' is not a GPU index: write indices like 0,1")
        devices.append(int(item))
    return devices


def select_gpus(override_affinity, affinity, thread, gpus_per_task, explicit):
    """The GPUs for this Worker thread, the Redshift way (deadline.md §6). Returns ``(gpus, warnings)``.

    With an affinity override: the explicit devices within the affinity (those outside are dropped with a
    warning), else ``gpus_per_task`` GPUs from the affinity starting at ``thread * gpus_per_task``
    (wrapping), else every affinity GPU. Without: the explicit devices, else
    ``range(thread * gpus_per_task, … + gpus_per_task)``, else none (ComfyUI sees every GPU).
    """
    warnings = []
    affinity = list(affinity)
    if override_affinity and affinity:
        if explicit:
            inside = [g for g in explicit if g in affinity]
            outside = [g for g in explicit if g not in affinity]
            if outside:
                warnings.append(f"GPU(s) {outside} are outside this Worker's GPU affinity {affinity}: not used")
            return inside, warnings
        if gpus_per_task > 0:
            start = (thread * gpus_per_task) % len(affinity)
            return [affinity[(start + i) % len(affinity)] for i in range(min(gpus_per_task, len(affinity)))], warnings
        return affinity, warnings
    if explicit:
        return list(explicit), warnings
    if gpus_per_task > 0:
        return list(range(thread * gpus_per_task, thread * gpus_per_task + gpus_per_task)), warnings
    return [], warnings


# farm_plugin.comfyui.gpu_failures' rules for what ComfyUI's log shows, repeated here (this file imports nothing
# of comfyfarm; tests/farm/test_plugin_helpers.py keeps them equal): (headline, texts, fix), in that order.
GPU_LOG_CAUSES = (
    ("GPU out of memory", ("cuda out of memory", "hip out of memory", "mps backend out of memory",
                           "allocation on device", "cudnn_status_alloc_failed", "cublas_status_alloc_failed"),
     "give the workflow less to hold at once (a smaller resolution or batch, fewer frames per window where the "
     "workflow has a window setting), or send it to Workers with more GPU memory (a group or Limit for heavy "
     "workflows)"),
    ("GPU failure", ("an illegal memory access was encountered", "unspecified launch failure",
                     "uncorrectable ecc error", "gpu is lost", "fallen off the bus",
                     "the launch timed out and was terminated", "cuda error: unknown error",
                     "cuda-capable device(s) is/are busy or unavailable"),
     "the GPU or its driver failed under load: restart this Worker (and its GPU), and if it happens again "
     "blacklist the Worker for this job and have the GPU checked (nvidia-smi, the kernel log's Xid errors)"),
    ("no usable GPU driver", ("found no nvidia driver on your system",
                              "cuda driver version is insufficient for cuda runtime version",
                              "the nvidia driver on your system is too old", "driver/library version mismatch",
                              "system has unsupported display driver / cuda driver combination",
                              "no cuda-capable device is detected"),
     "install or repair the NVIDIA driver on this Worker (one that supports this torch's CUDA; reboot after a "
     "driver update), or keep the Worker out of the group that runs comfyfarm's GPU jobs"),
)


KILLED_CAUSE = (
    "ComfyUI was killed (SIGKILL)",
    "on Linux this is usually the kernel's out-of-memory killer (see `dmesg` or the journal for 'Out of memory: "
    "Killed process'): the machine ran out of RAM; run fewer ComfyUI instances or concurrent tasks on it, or "
    "smaller chunks")
KILLED_EXIT_CODES = (137, -9)  # Deadline reports a process killed by signal N as 128 + N


def gpu_cause(text, detail):
    """``headline: detail: fix`` where ComfyUI's log ``text`` shows a GPU failure (its last such line decides),
    else ``detail`` as it is."""
    for line in reversed(text.lower().splitlines()):
        for headline, texts, fix in GPU_LOG_CAUSES:
            if any(needle in line for needle in texts):
                return f"{headline}: {detail}: {fix}"
    return detail


def service_state_dir(configured, environ, platform, home):
    """Where the Worker's comfyfarm service writes its state: the plugin's Service State Directory, else
    ``COMFYFARM_SERVICE_DIR``, else the user's state folder (farm_plugin.service.state.default_state_dir's
    rule, repeated here: this file imports nothing of comfyfarm)."""
    if configured:
        return Path(configured)
    if environ.get("COMFYFARM_SERVICE_DIR"):
        return Path(environ["COMFYFARM_SERVICE_DIR"])
    if platform == "win32":
        base = Path(environ.get("LOCALAPPDATA") or Path(home) / "AppData" / "Local")
    elif platform == "darwin":
        base = Path(home) / "Library" / "Application Support"
    else:
        base = Path(environ.get("XDG_STATE_HOME") or Path(home) / ".local" / "state")
    return base / "comfyfarm" / "service"


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def choose_port(base_port, gpus, thread):
    """Base port + the first GPU index (or the thread number without a GPU), or the next free one."""
    wanted = base_port + (gpus[0] if gpus else thread)
    for port in range(wanted, wanted + PORT_SEARCH_SPAN):
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port from {wanted} to {wanted + PORT_SEARCH_SPAN - 1} on {LOOPBACK}")


def frames_of_task(job_frames, start, end):
    """The job's frames within ``start..end`` (a task of a stepped list holds only the listed frames)."""
    low, high = min(start, end), max(start, end)
    return [int(f) for f in job_frames if low <= int(f) <= high]


def frame_list_text(frames):
    """Frames as a comma list of runs (``1001-1008,1011``), which the runtime parses."""
    runs: list[list[int]] = []
    for frame in frames:
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs)


def frame_path(pattern, frame):
    """``pattern``'s path for ``frame`` (``####``, ``%04d``, ``$F4`` or ``@@@@`` padding)."""
    token = FRAME_TOKEN.search(pattern)
    if token is None:
        return pattern
    text = token.group(0)
    digits = token.group(1) or token.group(2)
    padding = len(text) if text[0] in "#@" else int(digits or 1)
    return pattern[:token.start()] + f"{frame:0{padding}d}" + pattern[token.end():]


def quote(text):
    """One command-line argument, quoted for Deadline's argument string."""
    text = str(text)
    if text and not re.search(r'[\s"]', text):
        return text
    return '"' + text.replace('"', '\\"') + '"'


def record_refusal(record, path, version=COMFYFARM_VERSION, schemas=JOB_RECORD_SCHEMAS):
    """Why this plugin cannot run a job record (None when it can): one from an incompatible comfyfarm.

    The record's ``schema`` decides; its ``created_by`` (the comfyfarm that wrote it) names the fix."""
    schema = record.get("schema") if isinstance(record, dict) else None
    if not isinstance(schema, int) or isinstance(schema, bool):
        return (f"{path} is not a comfyfarm job record (it has no schema version): check Job Record in "
                "Job Properties > Plugin")
    written_by = record.get("created_by") or "an unknown version"
    oldest, newest = schemas
    if schema > newest:
        return (f"the job record {path} was written by comfyfarm {written_by} (job record schema {schema}), newer "
                f"than this farm's comfyfarm {version} reads (schema {newest}): upgrade the farm to comfyfarm "
                f"{written_by} (install/install.sh repository, and install/install.sh worker on each GPU node), or "
                f"resubmit the job from comfyfarm {version}")
    if schema < oldest:
        return (f"the job record {path} was written by comfyfarm {written_by} (job record schema {schema}), older "
                f"than this farm's comfyfarm {version} reads (schema {oldest} and later): resubmit the job from "
                f"comfyfarm {version}")
    return None


def pass_pattern(pattern, name):
    """``pattern`` for the pass ``name`` of a several-pass job (farm_plugin.frames.pattern.FramePattern.for_pass,
    which Deadline's Python cannot import): ``_<name>`` before the separator in front of the frame number:
    ``/o/sh010.####.exr`` → ``/o/sh010_depth.####.exr``, ``/o/sh010_####.exr`` → ``/o/sh010_depth_####.exr``,
    ``/o/####.exr`` → ``/o/depth.####.exr``."""
    name_start = max(pattern.rfind("/"), pattern.rfind("\\")) + 1
    token = FRAME_TOKEN.search(pattern, name_start)
    if token is None:
        return pattern
    base, separator = pattern[name_start:token.start()], ""
    if base and base[-1] in PASS_SEPARATORS:
        base, separator = base[:-1], base[-1]
    head = f"{base}_{name}{separator}" if base else f"{name}{separator or '.'}"
    return pattern[:name_start] + head + pattern[token.start():]


def output_patterns(record, output):
    """The output pattern of each pass the job writes: ``output`` (the record's pattern as this Worker sees
    it) for a one-pass job (or a record without ``passes``), ``pass_pattern`` of it for each of several."""
    passes = (record.get("workflow") or {}).get("passes") or []
    if len(passes) <= 1:
        return [output]
    return [pass_pattern(output, str(spec["name"])) for spec in passes]


def task_output_frames(record, frames):
    """The output frames a task's source ``frames`` own (farm_plugin.frames.retime.Retime.outputs_of): the same
    frames, unless the workflow's ``sequence.ratio`` adds frames (k: each frame owns itself and the k - 1 made
    after it; the job's last frame only itself) or drops them (1/m: every m-th frame of the job is kept)."""
    ratio = float(((record.get("workflow") or {}).get("sequence") or {}).get("ratio") or 1)
    source = [int(f) for f in (record.get("source") or {}).get("frames") or []]
    if abs(ratio - 1) < 1e-6 or not source:
        return list(frames)
    k, m = (round(ratio), 1) if ratio > 1 else (1, round(1 / ratio))
    position = {frame: index for index, frame in enumerate(source)}
    first, last = source[0], len(source) - 1
    owned = []
    for frame in frames:
        index = position.get(int(frame))
        if index is None:
            continue
        if m > 1:
            if index % m == 0:
                owned.append(first + index // m)
        elif index == last:
            owned.append(first + index * k)
        else:
            owned.extend(first + index * k + j for j in range(k))
    return owned


def hand_back_arguments(record, record_path, job_id, part, state, frames, mapped):
    """The arguments of ``python -m farm_plugin.completion.cli`` that hand back the job ``job_id`` (``part``)
    whose job record is ``record`` (at ``record_path`` on this Worker). ``state`` is its JobStatus, None when
    Deadline no longer has it; ``frames`` its frame list for a preview ("" for a main job, which checks the
    whole clip); ``mapped`` maps a farm path for this Worker (RepositoryUtils.CheckPathMapping).

    Completed: the record says completed (or which frames are missing). Failed (a cancel fails the job too):
    failed, with the frames that exist. Gone (deleted; or deleted as it completed, by OnJobComplete), or in
    any other state: completed only if every frame is on disk."""
    arguments = ["-m", "farm_plugin.completion.cli", "--job", record_path, "--deadline-job-id", job_id,
                 "--part", part, "--output-pattern", mapped(record["output"]["pattern"])]
    if frames:
        arguments += ["--frames", frames]
    if record.get("inbox"):
        arguments += ["--inbox", mapped(record["inbox"])]
    if state == "Failed":
        arguments += ["--failed", "--reason", f"the Deadline job {job_id} failed or was cancelled: see its error "
                      "reports in Deadline Monitor"]
    elif state is None:
        arguments += ["--failed-unless-complete", "--reason", f"the Deadline job {job_id} was deleted"]
    elif state != "Completed":
        arguments += ["--failed-unless-complete", "--reason", f"the Deadline job {job_id} is {state}, not finished"]
    return arguments


def without_deadline_folders(value):
    """A ``:`` path list without the folders of Deadline's own install: Thinkbox's Nuke.py (scrubLibPaths) drops
    every entry naming "Deadline", whose libraries (an IlmImf among them) break EXR writers. Empty entries (the
    current folder, to the loader) go too."""
    return ":".join(entry for entry in value.split(":") if entry and "Deadline" not in entry)


def with_hosts(no_proxy, hosts):
    """A ``no_proxy`` value with ``hosts`` appended where missing, the entries already there kept."""
    entries = [entry.strip() for entry in (no_proxy or "").split(",") if entry.strip()]
    return ",".join(entries + [host for host in hosts if host not in entries])


def child_environment(environ, extra_hosts=(), windows=False):
    """The variables this plugin changes for every process it starts, from the Worker's ``environ``:

    - ``LD_LIBRARY_PATH`` and the ``DYLD_*`` paths without Deadline's folders (not on Windows, like Nuke.py);
    - ``no_proxy``/``NO_PROXY`` with loopback (and ``extra_hosts``) appended: urllib and websocket-client would
      otherwise send the runner's calls to its ComfyUI on 127.0.0.1 to the studio's ``http_proxy``, which is
      kept for everything else (ComfyUI's downloads)."""
    changes = {}
    if not windows:
        for name in LIBRARY_PATH_VARIABLES:
            value = environ.get(name)
            if value and without_deadline_folders(value) != value:
                changes[name] = without_deadline_folders(value)
    no_proxy = with_hosts(environ.get("no_proxy") or environ.get("NO_PROXY"), LOOPBACK_HOSTS + tuple(extra_hosts))
    changes["no_proxy"] = changes["NO_PROXY"] = no_proxy
    return changes


def http_json(url, timeout_s, body=None):
    """One JSON call to ComfyUI, never through a proxy: urllib sends even 127.0.0.1 to ``http_proxy`` (only
    ``no_proxy`` exempts a host), and this plugin's ComfyUI is its own (like the runner's, whose HTTP client
    does not read the environment's proxies)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout_s) as response:
        text = response.read().decode("utf-8", "replace")
    return json.loads(text) if text.strip() else None


# -- the plugin ---------------------------------------------------------------------------------------


class ComfyUIPlugin(DeadlinePlugin):
    def __init__(self):
        super().__init__()
        self.InitializeProcessCallback += self.InitializeProcess
        self.StartJobCallback += self.StartJob
        self.RenderTasksCallback += self.RenderTasks
        self.EndJobCallback += self.EndJob
        self.MonitoredManagedProcessExitCallback += self.MonitoredManagedProcessExit
        self.comfyui = None  # ComfyUIProcess while we own one
        self.external = False  # attached to ExternalServerURL: nothing of ours to start or stop
        self.service_gpu = None  # the GPU whose comfyfarm service ComfyUI this job uses (farm_plugin.service)
        self.prepared = False  # the service's ComfyUI was just checked (StartJob): the first task need not
        self.url = ""
        self.restarts = 0
        self.scratch = ""
        self.environment_changes = None  # child_environment's, once set on this plugin's processes

    def Cleanup(self):  # noqa: N802
        if self.comfyui is not None:
            self.comfyui.Cleanup()
        del self.InitializeProcessCallback
        del self.StartJobCallback
        del self.RenderTasksCallback
        del self.EndJobCallback
        del self.MonitoredManagedProcessExitCallback

    def InitializeProcess(self):  # noqa: N802
        self.PluginType = PluginType.Advanced
        self.SingleFramesOnly = False
        self.StdoutHandling = True

    # -- configuration ------------------------------------------------------------------------------

    def python(self):
        candidates = self.GetConfigEntry("PythonExecutable")
        found = FileUtils.SearchFileList(";".join(p.strip() for p in re.split(r"[;\r\n]+", candidates) if p.strip()))
        if not found:
            self.FailRender(f"none of the PythonExecutable candidates exists on {self.GetSlaveName()}: "
                            f"{candidates!r}: set it in Configure Plugins > ComfyUI to the Python of ComfyUI's "
                            "environment, where comfyfarm's worker runtime is installed")
        return found

    def extra_environment(self):
        text = self.GetConfigEntryWithDefault("ExtraEnvironment", "")
        pairs = {}
        for line in re.split(r"[;\r\n]+", text):
            if line.strip():
                key, sep, value = line.strip().partition("=")
                if not sep:
                    self.FailRender(f"ExtraEnvironment line '{line.strip()}' is not KEY=VALUE: fix it in "
                                    "Configure Plugins > ComfyUI")
                pairs[key.strip()] = value
        return pairs

    def startup_timeout_s(self):
        return self.GetIntegerConfigEntryWithDefault("StartupTimeoutSeconds", 300)

    def prepare_environment(self, external_url=""):
        """Set child_environment's changes for every process this plugin starts (once per loaded plugin)."""
        if self.environment_changes is not None:
            return
        host = urllib.parse.urlsplit(external_url).hostname if external_url else None
        self.environment_changes = child_environment(os.environ, [host] if host else [],
                                                     windows=SystemUtils.IsRunningOnWindows())
        for name, value in self.environment_changes.items():
            self.SetProcessEnvironmentVariable(name, value)
        scrubbed = [name for name in LIBRARY_PATH_VARIABLES if name in self.environment_changes]
        if scrubbed:
            self.LogInfo(f"comfyfarm: Deadline's own library folders removed from {', '.join(scrubbed)} for "
                         "ComfyUI and the runner")
        self.LogInfo(f"comfyfarm: no_proxy for ComfyUI and the runner: {self.environment_changes['no_proxy']}")

    # -- StartJob: one ComfyUI per Worker thread per job -------------------------------------------

    def job_record(self):
        """The job record (path-mapped path, contents), or FailRender when it is unreadable or incompatible."""
        record_path = RepositoryUtils.CheckPathMapping(self.GetPluginInfoEntry("JobRecord"))
        try:
            record = json.loads(Path(record_path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.FailRender(f"cannot read the job record {record_path} on {self.GetSlaveName()} ({exc}): is the "
                            "shared storage mounted here, and the path mapping right?")
        refusal = record_refusal(record, record_path)
        if refusal:
            self.FailRender(refusal)
        return record_path, record

    def StartJob(self):  # noqa: N802
        _path, record = self.job_record()  # refuse an incompatible job before any ComfyUI starts
        self.LogInfo(f"comfyfarm {COMFYFARM_VERSION}: ComfyUI plugin starting job {self.GetJob().JobName} (job "
                     f"record written by comfyfarm {record.get('created_by') or '?'}, schema {record['schema']})")
        if self.is_hand_back():
            self.LogInfo(f"comfyfarm: hand-back job of job {self.GetPluginInfoEntry('FinishesJob')}: no ComfyUI")
            return
        external = self.GetConfigEntryWithDefault("ExternalServerURL", "").strip().rstrip("/")
        self.prepare_environment(external)
        if external:
            self.url, self.external = external, True
            self.LogInfo(f"comfyfarm: attaching to the ComfyUI at {external}")
            self.wait_until_healthy(self.startup_timeout_s(), owned=False)
            return
        if self.attach_service():
            return
        self.start_comfyui(self.startup_timeout_s())

    # -- the Worker's comfyfarm service (farm_plugin.service) --------------------------------------

    def service_gpu_for_task(self):
        """The GPU whose service ComfyUI a task uses: its one GPU; without a selection or affinity, the one
        numbered like the Worker thread. None for a task of several GPUs (a service ComfyUI has one)."""
        gpus = self.gpus()
        if len(gpus) > 1:
            return None
        return str(gpus[0]) if gpus else str(self.GetThreadNumber())

    def attach_service(self):
        """Use the service's ComfyUI of the task's GPU when one answers (True); False: start our own."""
        if self.GetConfigEntryWithDefault("WorkerService", "Use When Running") == SERVICE_OFF:
            return False
        gpu = self.service_gpu_for_task()
        if gpu is None:
            self.LogInfo("comfyfarm: a task of several GPUs: starting ComfyUI for this job (the service runs one "
                         "per GPU)")
            return False
        state = self.service_directory() / f"gpu-{gpu}.json"
        if not state.is_file():  # no service on this machine: nothing to ask, no process to start
            self.LogInfo(f"comfyfarm: no comfyfarm service for GPU {gpu} on this Worker (no {state}): starting "
                         "ComfyUI for this job")
            return False
        self.prepare_environment()
        url = self.prepare_service(gpu)
        if url is None:
            return False
        self.url, self.service_gpu, self.prepared = url, gpu, True
        self.LogInfo(f"comfyfarm: using the warm ComfyUI of comfyfarm's service on GPU {gpu} at {url}")
        return True

    def service_directory(self):
        configured = self.GetConfigEntryWithDefault("ServiceDirectory", "").strip()
        return service_state_dir(RepositoryUtils.CheckPathMapping(configured) if configured else "", os.environ,
                                 sys.platform, Path.home())

    def prepare_service(self, gpu):
        """``python -m farm_plugin.service prepare``: the URL to use, or None where no service answers.
        Fails the task where the service's ComfyUI cannot take it (the figures are in the message)."""
        _path, record = self.job_record()
        process = ServiceProcess(self, self.python(), str(self.service_directory()), gpu, self.GetJob().JobId,
                                 (record.get("workflow") or {}).get("vram_gb"))
        try:
            self.RunManagedProcess(process)
        finally:
            process.Cleanup()
        code = process.exit_code if process.exit_code is not None else process.ExitCode
        if code == EXIT_OK and process.url:
            return process.url
        if code == EXIT_NO_SERVICE:
            self.LogInfo(f"comfyfarm: {process.said or 'no comfyfarm service answers'}: starting ComfyUI for this "
                         "job")
            return None
        self.FailRender(f"comfyfarm: the service's ComfyUI on GPU {gpu} cannot take this task: "
                        f"{process.said or f'the runtime exited with code {code}'}")
        return None

    def gpus(self):
        try:
            explicit = parse_devices(self.GetPluginInfoEntryWithDefault("SelectGPUDevices", ""))
        except ValueError as exc:
            self.FailRender(f"{exc} (Job Properties > Plugin)")
        per_task = self.GetIntegerPluginInfoEntryWithDefault("GPUsPerTask", 1)
        affinity = list(self.GpuAffinity()) if self.OverrideGpuAffinity() else []
        gpus, warnings = select_gpus(self.OverrideGpuAffinity(), affinity, self.GetThreadNumber(), per_task, explicit)
        for warning in warnings:
            if self.GetConfigEntryWithDefault("GPUsOutsideAffinity", "Warn") == "Fail":
                self.FailRender(f"{warning}: change SelectGPUDevices, or the Worker's GPU affinity")
            self.LogWarning(warning)
        if explicit and not gpus:
            self.FailRender(f"none of SelectGPUDevices {explicit} is in this Worker's GPU affinity {affinity}")
        return gpus

    def start_comfyui(self, timeout_s):
        comfyui_dir = self.GetConfigEntry("ComfyUIDirectory").strip()
        if not comfyui_dir or not (Path(comfyui_dir) / "main.py").is_file():
            self.FailRender(f"ComfyUIDirectory '{comfyui_dir}' is not a ComfyUI folder (no main.py) on "
                            f"{self.GetSlaveName()}: set it in Configure Plugins > ComfyUI")
        self.prepare_environment()
        gpus = self.gpus()
        base_port = self.GetIntegerConfigEntryWithDefault("BasePort", 8188)
        port = choose_port(base_port, gpus, self.GetThreadNumber())
        for _attempt in range(PORT_ATTEMPTS):
            self.launch_comfyui(comfyui_dir, gpus, port)
            if self.wait_until_healthy(timeout_s, owned=True):
                return
            # Another process took the port between our check and ComfyUI's bind: the next free one.
            self.LogWarning(f"comfyfarm: port {port} was taken as ComfyUI started: trying the next free port")
            self.stop_comfyui()
            port = choose_port(port + 1, [], 0)
        self.FailRender(f"ComfyUI found no free port from {base_port} on {LOOPBACK} after {PORT_ATTEMPTS} tries: "
                        "change BasePort in Configure Plugins > ComfyUI")

    def launch_comfyui(self, comfyui_dir, gpus, port):
        scratch_root = self.GetConfigEntryWithDefault("ScratchDirectory", "").strip()
        if scratch_root:
            self.scratch = str(Path(scratch_root) / f"{self.GetSlaveName()}-{self.GetThreadNumber()}-{port}")
        else:
            self.scratch = self.CreateTempDirectory(f"comfyfarm-{port}")
        environment = self.extra_environment()
        if gpus:
            environment["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        if "CUDA_VISIBLE_DEVICES" in environment or "CUDA_VISIBLE_DEVICES" in os.environ:
            # CUDA numbers GPUs fastest first unless told otherwise; Deadline's GPU affinity, nvidia-smi and
            # these indices count in PCI bus order.
            environment.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        arguments = [
            "main.py", "--listen", LOOPBACK, "--port", str(port),
            "--input-directory", str(Path(self.scratch) / "input"),
            "--output-directory", str(Path(self.scratch) / "output"),
            "--temp-directory", str(Path(self.scratch) / "temp"),
            "--disable-auto-launch",
        ]
        arguments += self.frame_nodes_arguments()
        extra = self.GetConfigEntryWithDefault("ExtraArguments", "").strip()
        self.url = f"http://{LOOPBACK}:{port}"
        self.LogInfo(f"comfyfarm: starting ComfyUI on GPU(s) {gpus or 'all'} at {self.url} from {comfyui_dir}")
        self.comfyui = ComfyUIProcess(self, self.python(), comfyui_dir,
                                      " ".join(quote(a) for a in arguments) + (f" {extra}" if extra else ""),
                                      environment)
        self.StartMonitoredManagedProcess(COMFYUI_PROCESS, self.comfyui)

    def frame_nodes_arguments(self):
        """``--extra-model-paths-config`` for a YAML that adds comfyfarm's frame nodes to ComfyUI (the
        full-precision path), or nothing where the runtime does not have them: the runner then says in the task
        status that frames take the 8-bit path."""
        try:
            done = subprocess.run([self.python(), "-c", FRAME_NODES_PROBE], capture_output=True, text=True,
                                  timeout=FRAME_NODES_PROBE_SECONDS, stdin=subprocess.DEVNULL,
                                  env={**os.environ, **(self.environment_changes or {})})
            folder = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else ""
        except (OSError, subprocess.TimeoutExpired) as exc:
            folder, done = "", None
            self.LogWarning(f"comfyfarm: could not ask {self.python()} where comfyfarm's frame nodes are: {exc}")
        if not folder or not Path(folder).is_dir():
            reason = (done.stderr.strip().splitlines() or ["no answer"])[-1] if done is not None else "no answer"
            self.LogWarning(f"comfyfarm: comfyfarm's frame nodes were not found beside the runtime ({reason}): "
                            "ComfyUI starts without them, frames take the 8-bit path; run install.sh worker")
            return []
        config = Path(self.scratch) / EXTRA_PATHS_FILE
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f"comfyfarm:\n  custom_nodes: {json.dumps(folder)}\n", encoding="utf-8")
        self.LogInfo(f"comfyfarm: ComfyUI loads comfyfarm's frame nodes from {folder}")
        return ["--extra-model-paths-config", str(config)]

    def wait_until_healthy(self, timeout_s, owned):
        """True once ComfyUI answers; False when an owned ComfyUI lost its port to another process. A cancel
        (a requeue, the job failed or suspended) or the timeout stops the ComfyUI we started and fails the
        task."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.IsCanceled():
                if owned:
                    self.stop_comfyui()
                self.FailRender("comfyfarm: task canceled while waiting for ComfyUI to start")
            self.flush_comfyui_output()
            if owned and not self.MonitoredManagedProcessIsRunning(COMFYUI_PROCESS):
                tail = self.comfyui_log_tail()
                if "address already in use" in tail.lower():
                    return False
                self.FailRender(gpu_cause(tail, f"ComfyUI exited while starting at {self.url}") + f"\n{tail}")
            try:
                stats = http_json(f"{self.url}/system_stats", 2.0)
            except (OSError, ValueError):
                time.sleep(HEALTH_POLL_SECONDS)
                continue
            argv = (stats or {}).get("system", {}).get("argv") or []
            if owned and str(Path(self.scratch) / "input") not in argv:
                return False  # another server answers there, not the ComfyUI this Worker started
            self.LogInfo(f"comfyfarm: ComfyUI is up at {self.url} ({stats['system'].get('comfyui_version', '?')})")
            return True
        tail = self.comfyui_log_tail()
        if owned:
            self.LogWarning(f"comfyfarm: stopping the ComfyUI that did not answer within {timeout_s} s")
            self.stop_comfyui()
        self.FailRender(f"ComfyUI did not answer at {self.url} within {timeout_s} s: raise StartupTimeoutSeconds "
                        f"in Configure Plugins > ComfyUI, or see why below\n{tail}")
        return False

    def flush_comfyui_output(self):
        """Hand ComfyUI's pending output lines to its handler (Deadline runs monitored handlers on flush)."""
        if self.comfyui is not None:
            self.FlushMonitoredManagedProcessStdout(COMFYUI_PROCESS)

    def comfyui_log_tail(self, flush=True):
        if self.comfyui is None:
            return ""
        if flush:
            self.flush_comfyui_output()
        return "last lines of ComfyUI's log:\n" + "\n".join("  " + line for line in self.comfyui.tail)

    def stop_comfyui(self):
        """Shut down the ComfyUI this plugin started (its whole process tree), if any."""
        if self.comfyui is not None:
            self.ShutdownMonitoredManagedProcess(COMFYUI_PROCESS)
            self.comfyui.Cleanup()
            self.comfyui = None

    def comfyui_was_killed(self):
        """Whether the ComfyUI this plugin started ended by SIGKILL (the out-of-memory killer, as a rule)."""
        if self.comfyui is None or self.MonitoredManagedProcessIsRunning(COMFYUI_PROCESS):
            return False
        return self.GetMonitoredManagedProcessExitCode(COMFYUI_PROCESS) in KILLED_EXIT_CODES

    def restart_comfyui(self):
        if self.comfyui_was_killed():
            self.LogWarning(f"comfyfarm: {KILLED_CAUSE[0]}: {KILLED_CAUSE[1]}")
        self.restarts += 1
        self.LogWarning(f"comfyfarm: ComfyUI stopped; restarting it ({self.restarts}/{self.restart_limit()})\n"
                        f"{self.comfyui_log_tail()}")
        self.SetStatusMessage(f"ComfyUI stopped: restarting it ({self.restarts}/{self.restart_limit()})")
        self.stop_comfyui()
        self.start_comfyui(self.startup_timeout_s())

    def restart_limit(self):
        return self.GetIntegerConfigEntryWithDefault("RestartLimit", 2)

    def MonitoredManagedProcessExit(self, name=COMFYUI_PROCESS):  # noqa: N802
        """Deadline's call (on the plugin's thread) when a monitored process exits on its own; without this
        handler Deadline fails the task at once (Thinkbox's stock handlers fail it: 3dsmax.py, Fusion.py). The
        restart stays where the plugin next needs ComfyUI: a chunk that lost it exits 3 and runs again on a
        restarted one, a task that finds it gone restarts it first (both within RestartLimit), and one that
        dies while starting fails StartJob with its log. ``name`` has a default: Epic's UnrealEngine5 handler
        takes none."""
        self.LogWarning(f"comfyfarm: {name} exited on its own at {self.url}; it is restarted where the job needs "
                        f"it next (RestartLimit {self.restart_limit()}, {self.restarts} restart(s) so far)\n"
                        f"{self.comfyui_log_tail(flush=False)}")

    # -- RenderTasks: one chunk --------------------------------------------------------------------

    def ensure_comfyui(self):
        """Before a chunk: the ComfyUI of this Worker thread runs. A StartJob that was canceled left none
        (Deadline then goes straight to RenderTasks); one that exited since the last task is restarted
        (RestartLimit)."""
        if self.external:
            return
        if self.service_gpu is not None:
            if self.prepared:  # StartJob has just checked it
                self.prepared = False
                return
            url = self.prepare_service(self.service_gpu)  # the hygiene between tasks
            if url is not None:
                self.url = url
                return
            self.service_gpu = None  # the service went away: ours from now on
        if self.comfyui is None:
            self.start_comfyui(self.startup_timeout_s())
        elif not self.MonitoredManagedProcessIsRunning(COMFYUI_PROCESS):
            if self.restarts >= self.restart_limit():
                self.FailRender(f"ComfyUI at {self.url} stopped and was already restarted {self.restarts} time(s) "
                                f"(RestartLimit in Configure Plugins > ComfyUI)\n{self.comfyui_log_tail()}")
            self.restart_comfyui()

    def RenderTasks(self):  # noqa: N802
        if self.is_hand_back():
            self.hand_back()
            return
        record_path, record = self.job_record()
        source = RepositoryUtils.CheckPathMapping(record["source"]["pattern"])
        output = RepositoryUtils.CheckPathMapping(record["output"]["pattern"])
        frames = frames_of_task(self.GetJob().JobFramesList, self.GetStartFrame(), self.GetEndFrame())
        if not frames:
            self.FailRender(f"task {self.GetCurrentTaskId()} holds no frame of the job's frame list "
                            f"({self.GetStartFrame()}-{self.GetEndFrame()})")
        self.ensure_comfyui()
        scratch = self.CreateTempDirectory("comfyfarm-chunk")
        while True:
            chunk = ChunkProcess(self, self.python(), record_path, frame_list_text(frames), source, output, scratch)
            try:
                self.RunManagedProcess(chunk)
            except Exception:
                if self.IsCanceled():  # Deadline killed the runner: it could withdraw nothing itself
                    self.withdraw(record, output, frames)
                raise
            finally:
                chunk.Cleanup()
            code = chunk.exit_code if chunk.exit_code is not None else chunk.ExitCode
            if self.IsCanceled() or code == EXIT_CANCELLED:
                self.withdraw(record, output, frames)
                self.FailRender("comfyfarm: task canceled: ComfyUI interrupted, no partial file left")
            if code == EXIT_OK:
                self.SetProgress(100.0)
                return
            lost = code == EXIT_COMFYUI_LOST
            if lost and self.comfyui is not None and self.restarts < self.restart_limit():
                self.restart_comfyui()
                continue
            if lost and self.service_gpu is not None and self.restarts < self.restart_limit():
                self.restarts += 1  # the service restarts its ComfyUI; prepare waits for it, or ours starts
                self.LogWarning(f"comfyfarm: the service's ComfyUI on GPU {self.service_gpu} stopped; running the "
                                f"chunk again once it is back ({self.restarts}/{self.restart_limit()})")
                self.ensure_comfyui()
                continue
            detail = chunk.error or f"the comfyfarm runtime exited with code {code}"
            tail = f"\n{self.comfyui_log_tail()}" if lost else ""
            if lost and self.comfyui_was_killed():
                detail = f"{KILLED_CAUSE[0]}: {detail}: {KILLED_CAUSE[1]}"
            elif lost and not detail.startswith(tuple(headline for headline, _texts, _fix in GPU_LOG_CAUSES)):
                detail = gpu_cause(tail, detail)  # ComfyUI died of it: its log says which
            self.FailRender(f"{detail}{tail}")

    def withdraw(self, record, output, frames):
        """After a cancel: clear ComfyUI's queue, interrupt it, and remove the half-written files of the task's
        output frames in every pass (``.<name>.<random>.tmp[.<ext>]``, farm_plugin.atomic's names)."""
        for path, body in (("/queue", {"clear": True}), ("/interrupt", {})):
            try:
                http_json(f"{self.url}{path}", 5.0, body)
            except (OSError, ValueError) as exc:
                self.LogWarning(f"comfyfarm: could not reach ComfyUI to withdraw the chunk: {exc}")
        for pattern in output_patterns(record, output):
            for frame in task_output_frames(record, frames):
                target = Path(frame_path(pattern, frame))
                for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp*"):
                    self.LogInfo(f"comfyfarm: removing {stale}, half-written when the task was canceled")
                    stale.unlink(missing_ok=True)

    # -- hand-back jobs ----------------------------------------------------------------------------

    def is_hand_back(self):
        return self.GetPluginInfoEntryWithDefault("Mode", "") == FINISH_MODE

    def hand_back(self):
        """The one task of a hand-back job: check the finished job's frames and write its completion record
        (the runtime's ``farm_plugin.completion.cli``, bounded by the job's task timeout)."""
        record_path, record = self.job_record()
        job_id = self.GetPluginInfoEntry("FinishesJob")
        part = self.GetPluginInfoEntryWithDefault("Part", "main")
        finished = RepositoryUtils.GetJob(job_id, True)
        state = finished.JobStatus if finished is not None else None
        self.LogInfo(f"comfyfarm {COMFYFARM_VERSION}: handing back job {job_id} ({part}), "
                     f"{state or 'no longer in the queue'}: checking its frames")
        self.SetStatusMessage(f"checking the frames of job {job_id}")
        self.prepare_environment()
        arguments = hand_back_arguments(record, record_path, job_id, part, state,
                                        self.GetPluginInfoEntryWithDefault("FinishesFrames", ""),
                                        RepositoryUtils.CheckPathMapping)
        process = HandBackProcess(self, self.python(), arguments)
        try:
            self.RunManagedProcess(process)
        finally:
            process.Cleanup()
        code = process.exit_code if process.exit_code is not None else process.ExitCode
        if code != EXIT_OK:
            self.FailRender(f"comfyfarm: could not hand job {job_id} back (the runtime exited with code {code}): "
                            f"{process.said or 'it said nothing'}")
        self.SetStatusMessage(process.said)
        self.SetProgress(100.0)

    # -- EndJob ------------------------------------------------------------------------------------

    def EndJob(self):  # noqa: N802
        if self.comfyui is not None:
            self.LogInfo("comfyfarm: shutting ComfyUI down")
            self.stop_comfyui()


class PythonProcess(ManagedProcess):
    """A managed process run by the configured Python: the wiring both of ours share."""

    def __init__(self, plugin, python, arguments):
        super().__init__()
        self.plugin = plugin
        self.python = python
        self.arguments = arguments
        self.InitializeProcessCallback += self.InitializeProcess
        self.RenderExecutableCallback += self.RenderExecutable
        self.RenderArgumentCallback += self.RenderArgument

    def Cleanup(self):  # noqa: N802
        for handler in self.StdoutHandlers:
            del handler.HandleCallback
        del self.InitializeProcessCallback
        del self.RenderExecutableCallback
        del self.RenderArgumentCallback

    def InitializeProcess(self):  # noqa: N802
        self.PopupHandling = False
        self.StdoutHandling = True
        # As Thinkbox's CommandLine.py does: "Ensure child processes are killed and the parent process is
        # terminated on exit" (a custom node's helper must not keep the GPU or the port after a cancel).
        self.UseProcessTree = True
        self.TerminateOnExit = True
        self.SetEnvironmentVariable("PYTHONUNBUFFERED", "1")
        self.add_handlers()

    def add_handlers(self):
        """Register this process's stdout handlers and environment."""

    def RenderExecutable(self):  # noqa: N802
        return self.python

    def RenderArgument(self):  # noqa: N802
        return self.arguments


class ComfyUIProcess(PythonProcess):
    """ComfyUI itself, kept running for the job; remembers its last lines for error reports."""

    def __init__(self, plugin, python, comfyui_dir, arguments, environment):
        super().__init__(plugin, python, arguments)
        self.comfyui_dir = comfyui_dir
        self.environment = environment
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.StartupDirectoryCallback += self.StartupDirectory

    def Cleanup(self):  # noqa: N802
        super().Cleanup()
        del self.StartupDirectoryCallback

    def add_handlers(self):
        for key, value in self.environment.items():
            self.SetEnvironmentVariable(key, value)
        self.AddStdoutHandlerCallback(".*").HandleCallback += self.remember

    def remember(self):
        self.tail.append(self.GetRegexMatch(0))

    def StartupDirectory(self):  # noqa: N802
        return self.comfyui_dir


class ExitCodeProcess(PythonProcess):
    """A process whose exit code the plugin reads and judges itself (``exit_code``): Deadline's own check
    would fail the task on any code but 0."""

    def __init__(self, plugin, python, arguments):
        super().__init__(plugin, python, arguments)
        self.exit_code = None
        self.CheckExitCodeCallback += self.CheckExitCode

    def Cleanup(self):  # noqa: N802
        super().Cleanup()
        del self.CheckExitCodeCallback

    def CheckExitCode(self, exit_code):  # noqa: N802
        self.exit_code = exit_code


class ChunkProcess(ExitCodeProcess):
    """``python -m farm_plugin.runner`` for one task; its progress lines (stdout) drive Deadline's progress. Its
    log lines (stderr, which reaches these handlers too) never start with a protocol word. The plugin decides
    on its exit code (a lost ComfyUI is restarted, not failed)."""

    def __init__(self, plugin, python, record, frames, source, output, scratch):
        super().__init__(plugin, python, " ".join(quote(a) for a in (
            "-m", "farm_plugin.runner", "--job", record, "--frames", frames, "--comfyui-url", plugin.url,
            "--scratch", scratch, "--source-pattern", source, "--output-pattern", output,
            "--idle-timeout-s", plugin.GetIntegerConfigEntryWithDefault("IdleTimeoutSeconds", 900),
        )))
        self.error = ""

    def add_handlers(self):
        self.AddStdoutHandlerCallback(r"^PROGRESS ([0-9.]+)").HandleCallback += self.progress
        self.AddStdoutHandlerCallback(r"^STATUS (.*)").HandleCallback += self.status
        self.AddStdoutHandlerCallback(r"^FRAME (-?\d+) (done|skipped)").HandleCallback += self.frame
        self.AddStdoutHandlerCallback(r"^ERROR (.*)").HandleCallback += self.failed

    def progress(self):
        self.plugin.SetProgress(float(self.GetRegexMatch(1)))
        self.plugin.flush_comfyui_output()  # keeps ComfyUI's log tail fresh for error reports

    def status(self):
        self.plugin.SetStatusMessage(self.GetRegexMatch(1))

    def frame(self):
        self.plugin.LogInfo(f"comfyfarm: frame {self.GetRegexMatch(1)} {self.GetRegexMatch(2)}")

    def failed(self):
        self.error = self.GetRegexMatch(1)


class ServiceProcess(ExitCodeProcess):
    """``python -m farm_plugin.service prepare`` for the task's GPU: its ``URL`` line says which ComfyUI to use;
    its ``comfyfarm service:`` line why it cannot be used. Its log lines (each check and decision, with the
    figures) go to the task's log."""

    def __init__(self, plugin, python, state_dir, gpu, job_id, vram_gb):
        arguments = ["-m", "farm_plugin.service", "--state-dir", state_dir, "prepare", "--gpu", gpu, "--job", job_id,
                     "--wait-s", str(plugin.startup_timeout_s())]
        if vram_gb:
            arguments += ["--vram-gb", str(vram_gb)]
        super().__init__(plugin, python, " ".join(quote(a) for a in arguments))
        self.url = ""
        self.said = ""

    def add_handlers(self):
        self.AddStdoutHandlerCallback(r"^URL (\S+)").HandleCallback += self.heard_url
        self.AddStdoutHandlerCallback(r"comfyfarm service: (.*)").HandleCallback += self.heard

    def heard_url(self):
        self.url = self.GetRegexMatch(1)

    def heard(self):
        self.said = self.GetRegexMatch(1)


class HandBackProcess(ExitCodeProcess):
    """``python -m farm_plugin.completion.cli`` for a hand-back job; its ``comfyfarm relink:`` line says what it
    wrote (or why it could not)."""

    def __init__(self, plugin, python, arguments):
        super().__init__(plugin, python, " ".join(quote(a) for a in arguments))
        self.said = ""

    def add_handlers(self):
        self.AddStdoutHandlerCallback(r"comfyfarm relink: (.*)").HandleCallback += self.heard

    def heard(self):
        self.said = self.GetRegexMatch(1)
