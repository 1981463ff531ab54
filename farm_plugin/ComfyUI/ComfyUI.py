"""comfyfarm's Deadline plugin: runs a job's chunks on a ComfyUI kept warm on this Worker's GPU(s).

An Advanced plugin (Deadline 10, Python 3), thin over comfyfarm's worker runtime:

- StartJob (once per job per Worker thread): refuse a job record from an incompatible comfyfarm (its
  ``schema`` outside ``JOB_RECORD_SCHEMAS``: record_refusal), choose the GPU(s) the Redshift way, derive the
  port, start ComfyUI as a monitored managed process bound to 127.0.0.1 with ``CUDA_VISIBLE_DEVICES`` (or
  attach to ``ExternalServerURL``) and wait until it answers. Models then stay loaded for every task of the
  job.
- RenderTasks (per task): run ``python -m farm_plugin.runner`` for the task's frames against that
  ComfyUI; its progress lines become SetProgress / SetStatusMessage; a ComfyUI that died is restarted
  (``RestartLimit``) and the chunk goes on; cancel interrupts ComfyUI; failures become FailRender with
  ComfyUI's node, class and exception text.
- EndJob: shut ComfyUI down.

Configure Plugins (``ComfyUI.param``) says where ComfyUI and the runtime's Python are; Job Properties
(``ComfyUI.options``) hold the job record and the GPU settings. Only the standard library is used here:
the runtime runs in the Python named by ``PythonExecutable``, not in Deadline's.
"""

from __future__ import annotations

import collections
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from Deadline.Plugins import DeadlinePlugin, PluginType
from Deadline.Scripting import FileUtils, RepositoryUtils
from FranticX.Processes import ManagedProcess

COMFYFARM_VERSION = "0.1.0"  # the product version (farm_plugin.__version__), shown in every job's log
JOB_RECORD_SCHEMAS = (1, 2)  # the oldest and newest job record schema this plugin and its runtime read
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

EXIT_OK = 0
EXIT_COMFYUI_LOST = 3
EXIT_CANCELLED = 130


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
    token = re.search(r"#+|@+|%0?(\d*)d|\$F(\d*)", pattern)
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


def http_json(url, timeout_s, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (loopback URLs)
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
        self.comfyui = None  # ComfyUIProcess while we own one
        self.url = ""
        self.restarts = 0
        self.scratch = ""

    def Cleanup(self):  # noqa: N802
        for process in (self.comfyui,):
            if process is not None:
                process.Cleanup()
        del self.InitializeProcessCallback
        del self.StartJobCallback
        del self.RenderTasksCallback
        del self.EndJobCallback

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
        timeout_s = self.GetIntegerConfigEntryWithDefault("StartupTimeoutSeconds", 300)
        external = self.GetConfigEntryWithDefault("ExternalServerURL", "").strip().rstrip("/")
        if external:
            self.url = external
            self.LogInfo(f"comfyfarm: attaching to the ComfyUI at {external}")
            self.wait_until_healthy(timeout_s, owned=False)
            return
        self.start_comfyui(timeout_s)

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
        gpus = self.gpus()
        base_port = self.GetIntegerConfigEntryWithDefault("BasePort", 8188)
        port = choose_port(base_port, gpus, self.GetThreadNumber())
        for _attempt in range(PORT_ATTEMPTS):
            self.launch_comfyui(comfyui_dir, gpus, port)
            if self.wait_until_healthy(timeout_s, owned=True):
                return
            # Another process took the port between our check and ComfyUI's bind: the next free one.
            self.LogWarning(f"comfyfarm: port {port} was taken as ComfyUI started: trying the next free port")
            self.ShutdownMonitoredManagedProcess(COMFYUI_PROCESS)
            self.comfyui = None
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
                                  timeout=FRAME_NODES_PROBE_SECONDS, stdin=subprocess.DEVNULL)
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
        """True once ComfyUI answers; False when an owned ComfyUI lost its port to another process."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.flush_comfyui_output()
            if owned and not self.MonitoredManagedProcessIsRunning(COMFYUI_PROCESS):
                tail = self.comfyui_log_tail()
                if "address already in use" in tail.lower():
                    return False
                self.FailRender(f"ComfyUI exited while starting at {self.url}\n{tail}")
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
        self.FailRender(f"ComfyUI did not answer at {self.url} within {timeout_s} s: raise StartupTimeoutSeconds "
                        f"in Configure Plugins > ComfyUI, or see why below\n{self.comfyui_log_tail()}")
        return False

    def flush_comfyui_output(self):
        """Hand ComfyUI's pending output lines to its handler (Deadline runs monitored handlers on flush)."""
        if self.comfyui is not None:
            self.FlushMonitoredManagedProcessStdout(COMFYUI_PROCESS)

    def comfyui_log_tail(self):
        if self.comfyui is None:
            return ""
        self.flush_comfyui_output()
        return "last lines of ComfyUI's log:\n" + "\n".join("  " + line for line in self.comfyui.tail)

    def restart_comfyui(self):
        self.restarts += 1
        self.LogWarning(f"comfyfarm: ComfyUI stopped; restarting it ({self.restarts}/{self.restart_limit()})")
        self.SetStatusMessage(f"ComfyUI stopped: restarting it ({self.restarts}/{self.restart_limit()})")
        self.ShutdownMonitoredManagedProcess(COMFYUI_PROCESS)
        self.comfyui = None
        self.start_comfyui(self.GetIntegerConfigEntryWithDefault("StartupTimeoutSeconds", 300))

    def restart_limit(self):
        return self.GetIntegerConfigEntryWithDefault("RestartLimit", 2)

    # -- RenderTasks: one chunk --------------------------------------------------------------------

    def RenderTasks(self):  # noqa: N802
        record_path, record = self.job_record()
        source = RepositoryUtils.CheckPathMapping(record["source"]["pattern"])
        output = RepositoryUtils.CheckPathMapping(record["output"]["pattern"])
        frames = frames_of_task(self.GetJob().JobFramesList, self.GetStartFrame(), self.GetEndFrame())
        if not frames:
            self.FailRender(f"task {self.GetCurrentTaskId()} holds no frame of the job's frame list "
                            f"({self.GetStartFrame()}-{self.GetEndFrame()})")
        scratch = self.CreateTempDirectory("comfyfarm-chunk")
        while True:
            chunk = ChunkProcess(self, self.python(), record_path, frame_list_text(frames), source, output, scratch)
            try:
                self.RunManagedProcess(chunk)
            except Exception:
                if self.IsCanceled():  # Deadline stopped the runner: withdraw what it had queued
                    self.withdraw(output, frames)
                raise
            finally:
                chunk.Cleanup()
            code = chunk.exit_code if chunk.exit_code is not None else chunk.ExitCode
            if self.IsCanceled() or code == EXIT_CANCELLED:
                self.withdraw(output, frames)
                self.FailRender("comfyfarm: task canceled: ComfyUI interrupted, no partial file left")
            if code == EXIT_OK:
                self.SetProgress(100.0)
                return
            lost = code == EXIT_COMFYUI_LOST
            if lost and self.comfyui is not None and self.restarts < self.restart_limit():
                self.restart_comfyui()
                continue
            detail = chunk.error or f"the comfyfarm runtime exited with code {code}"
            tail = f"\n{self.comfyui_log_tail()}" if lost else ""
            self.FailRender(f"{detail}{tail}")

    def withdraw(self, output, frames):
        """After a cancel: clear ComfyUI's queue, interrupt it, and remove half-written frames."""
        for path, body in (("/queue", {"clear": True}), ("/interrupt", {})):
            try:
                http_json(f"{self.url}{path}", 5.0, body)
            except (OSError, ValueError) as exc:
                self.LogWarning(f"comfyfarm: could not reach ComfyUI to withdraw the chunk: {exc}")
        folder = Path(output).parent
        for frame in frames:
            name = Path(frame_path(output, frame)).name
            for stale in folder.glob(f".{name}.*.tmp.*"):
                stale.unlink()

    # -- EndJob ------------------------------------------------------------------------------------

    def EndJob(self):  # noqa: N802
        if self.comfyui is not None:
            self.LogInfo("comfyfarm: shutting ComfyUI down")
            self.ShutdownMonitoredManagedProcess(COMFYUI_PROCESS)
            self.comfyui.Cleanup()
            self.comfyui = None


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


class ChunkProcess(PythonProcess):
    """``python -m farm_plugin.runner`` for one task; its progress lines drive Deadline's progress."""

    def __init__(self, plugin, python, record, frames, source, output, scratch):
        super().__init__(plugin, python, " ".join(quote(a) for a in (
            "-m", "farm_plugin.runner", "--job", record, "--frames", frames, "--comfyui-url", plugin.url,
            "--scratch", scratch, "--source-pattern", source, "--output-pattern", output,
            "--idle-timeout-s", plugin.GetIntegerConfigEntryWithDefault("IdleTimeoutSeconds", 900),
        )))
        self.error = ""
        self.exit_code = None
        self.CheckExitCodeCallback += self.CheckExitCode

    def Cleanup(self):  # noqa: N802
        super().Cleanup()
        del self.CheckExitCodeCallback

    def add_handlers(self):
        self.AddStdoutHandlerCallback(r"^PROGRESS ([0-9.]+)").HandleCallback += self.progress
        self.AddStdoutHandlerCallback(r"^STATUS (.*)").HandleCallback += self.status
        self.AddStdoutHandlerCallback(r"^FRAME (-?\d+) (done|skipped)").HandleCallback += self.frame
        self.AddStdoutHandlerCallback(r"^ERROR (.*)").HandleCallback += self.failed

    def CheckExitCode(self, exit_code):  # noqa: N802
        """Keep the exit code for the plugin, which decides (a lost ComfyUI is restarted, not failed)."""
        self.exit_code = exit_code

    def progress(self):
        self.plugin.SetProgress(float(self.GetRegexMatch(1)))
        self.plugin.flush_comfyui_output()  # keeps ComfyUI's log tail fresh for error reports

    def status(self):
        self.plugin.SetStatusMessage(self.GetRegexMatch(1))

    def frame(self):
        self.plugin.LogInfo(f"comfyfarm: frame {self.GetRegexMatch(1)} {self.GetRegexMatch(2)}")

    def failed(self):
        self.error = self.GetRegexMatch(1)
