"""The Deadline 10 plugin runtime double's machinery: it loads plugin files and runs them as a Worker does.

    from tests.doubles.deadline_runtime import SITE_DIR
    from tests.doubles.deadline_runtime.runtime import PluginHost, TaskSpec, WorkerSettings
    from tests.doubles.deadline_runtime.repository import StoreBackend

    host = PluginHost(WorkerSettings(name="gpu01", home=tmp / "gpu01", gpu_affinity=(0,)), repository_dir,
                      StoreBackend(fake.store))
    outcome = host.render_task(TaskSpec(job_id, 0, (1, 2)), cancel=threading.Event(),
                               progress=print, status=print)          # -> TaskOutcome
    host.leave_job()      # EndJob + CleanupDeadlinePlugin, as when the Worker moves on
    host.close()

``.events`` (+= events), ``.api`` (the classes), ``.jobs`` (Job/Task), ``.params`` (.param/.options),
``.repository`` (folders, settings, path mapping) and ``.processes`` (process groups) hold the parts; the
package docstring lists every behaviour and every guess.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from .api import (
    DeadlineEventListener,
    DeadlineException,
    DeadlinePlugin,
    FailRenderError,
    ManagedProcess,
    PluginContractError,
    PluginType,
    TaskCanceledError,
)
from .events import event_of, handlers_left, invoke, is_initialised
from .jobs import Job, Task
from .params import ParamFile, ParamFileError, read_param_file
from .processes import ProcessTree, split_arguments
from .repository import (
    RepositoryBackend,
    RepositoryConnection,
    RepositoryError,
    RepositoryFolder,
    connect,
    disconnect,
)

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05
_OUTPUT_AFTER_EXIT_SECONDS = 0.5
SIMPLE_ONLY_CALLBACKS = ("RenderExecutableCallback", "RenderArgumentCallback", "PreRenderTasksCallback",
                         "PostRenderTasksCallback", "StartupDirectoryCallback", "CheckExitCodeCallback")
ADVANCED_ONLY_CALLBACKS = ("StartJobCallback", "RenderTasksCallback", "EndJobCallback")
_module_counter = itertools.count(1)

LogSink = Callable[[str], None]


@dataclass(frozen=True)
class WorkerSettings:
    """One emulated Worker (thread 0). ``gpu_affinity``/``cpu_affinity``: None means "not overridden"
    (``OverrideGpuAffinity()`` False, ``GpuAffinity()`` []). ``home``: the Worker's local folder
    (``plugins/<job>`` copies, ``jobsData/<job>``, ``temp/<job>``). There is no grace period: what the
    runtime stops, it kills (see :mod:`.processes`)."""

    name: str
    home: Path
    gpu_affinity: Optional[Tuple[int, ...]] = None
    cpu_affinity: Optional[Tuple[int, ...]] = None
    thread_number: int = 0


@dataclass(frozen=True)
class TaskSpec:
    job_id: str
    task_id: int
    frames: Tuple[int, ...]


@dataclass(frozen=True)
class TaskOutcome:
    """``state``: ``completed``, ``failed`` (``error`` is the error report) or ``canceled`` (the task was taken
    away: nothing to report). ``log``: the task log (``0: INFO: ...``, ``0: STDOUT: ...`` lines)."""

    state: str
    error: str
    log: str

    @property
    def completed(self) -> bool:
        return self.state == "completed"


# ---------------------------------------------------------------------------------------------------------
# monitored processes


@dataclass
class _Monitored:
    tree: ProcessTree
    owner: ManagedProcess
    exit_reported: bool = False
    exit_checking: bool = True


def _process_tree(owner: Any) -> bool:
    """Whether stopping ``owner``'s process kills its children too (``UseProcessTree``)."""
    return bool(owner.UseProcessTree)


def _settings_text(owner: Any) -> str:
    return f"UseProcessTree {owner.UseProcessTree}, TerminateOnExit {owner.TerminateOnExit}"


# ---------------------------------------------------------------------------------------------------------
# the session behind one loaded plugin


class PluginSession:
    """What a loaded plugin's Deadline API calls reach (one per loaded plugin; see :mod:`.api`)."""

    def __init__(self, host: PluginHost, plugin_name: str, plugin_dir: Path, params: ParamFile, job_id: str) -> None:
        self.host = host
        self.worker = host.worker
        self.plugin_name = plugin_name
        self.plugin_dir = plugin_dir
        self.params = params
        self.job_id = job_id
        self.jobs_data_dir = host.worker.home / "jobsData" / job_id
        self.temp_root = host.worker.home / "temp" / job_id
        self.initialized = False
        self.process_env: Dict[str, str] = {}
        self.plugin_thread: Optional[int] = None
        self.launched: List[ManagedProcess] = []
        self._monitored: Dict[str, _Monitored] = {}
        self._job: Optional[Job] = None
        self._task: Optional[TaskSpec] = None
        self._frames: Tuple[int, int] = (0, 0)
        self._cancel: threading.Event = threading.Event()
        self._progress: Callable[[float], None] = _ignore
        self._status: Callable[[str], None] = _ignore
        self._task_log: Optional[List[str]] = None
        self._abort: Optional[str] = None
        self._lock = threading.Lock()

    # -- task context --------------------------------------------------------------------------------------

    def begin_task(self, task: TaskSpec, job: Job, cancel: threading.Event, progress: Callable[[float], None],
                   status: Callable[[str], None], task_log: List[str]) -> None:
        with self._lock:
            self._task, self._job, self._cancel = task, job, cancel
            self._progress, self._status, self._task_log = progress, status, task_log
            self._frames = (task.frames[0], task.frames[-1])
            self._abort = None
            self.plugin_thread = threading.get_ident()

    def end_task(self) -> None:
        """Between tasks (EndJob when the Worker goes idle...): no progress sink, not canceled."""
        with self._lock:
            self._progress, self._status, self._task_log = _ignore, _ignore, None
            self._cancel = threading.Event()

    def set_frames(self, start: int, end: int) -> None:
        self._frames = (start, end)

    def job(self) -> Job:
        if self._job is None:
            raise RuntimeError("no job yet")
        return Job(self._job._dl_data)

    def current_task(self) -> Task:
        task = self._require_task()
        return Task(task.job_id, task.task_id, list(task.frames))

    def _require_task(self) -> TaskSpec:
        if self._task is None:
            raise RuntimeError("no task yet")
        return self._task

    def start_frame(self) -> int:
        self._require_task()
        return self._frames[0]

    def end_frame(self) -> int:
        self._require_task()
        return self._frames[1]

    def plugin_info(self) -> Dict[str, str]:
        return dict(self.job()._dl_data["Props"].get("PlugInfo", {}))

    def config_value(self, key: str) -> Optional[str]:
        settings = self.host.folder.plugin_settings(self.plugin_name)
        if key in settings:
            return settings[key]
        return self.params.default(key)

    def aux_filenames(self) -> List[str]:
        names = self.job()._dl_data.get("Aux", [])
        return [str(self.jobs_data_dir / name) for name in names]

    def create_temp_dir(self, prefix: str) -> Path:
        if not prefix or "/" in prefix or "\\" in prefix or prefix in (".", ".."):
            raise DeadlineException(f"CreateTempDirectory: {prefix!r} is not a folder name")
        path = self.temp_root / prefix
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- logging and progress ------------------------------------------------------------------------------

    def log(self, level: str, text: str) -> None:
        for line in text.splitlines() or [""]:
            entry = f"{self.worker.thread_number}: {level}: {line}"
            with self._lock:
                if self._task_log is not None:
                    self._task_log.append(entry)
            self.host.emit(entry)

    def set_progress(self, percent: float) -> None:
        self._progress(percent)

    def set_status(self, message: str) -> None:
        self._status(message)

    def is_canceled(self) -> bool:
        self.raise_if_aborted()
        return self._cancel.is_set()

    def abort(self, message: str) -> bool:
        """Record an AbortRender; True when the caller is the plugin thread (it raises at once)."""
        with self._lock:
            self._abort = message
        return threading.get_ident() == self.plugin_thread

    def raise_if_aborted(self) -> None:
        if threading.get_ident() != self.plugin_thread:
            return
        with self._lock:
            message, self._abort = self._abort, None
        if message is not None:
            raise FailRenderError(message)

    # -- starting processes --------------------------------------------------------------------------------

    def _environment(self, extra: Dict[str, str]) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(self.job()._dl_data["Props"].get("Env", {}))
        env.update(self.process_env)
        env.update(extra)
        return env

    def _callback_text(self, owner: Any, name: str, *, required: bool) -> str:
        called, value = invoke(owner, name)
        if not called:
            if required:
                raise PluginContractError(f"{type(owner).__name__} has no {name} handler: Deadline needs it to "
                                          "start the process")
            return ""
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise PluginContractError(f"{type(owner).__name__}.{name} must return a string, not "
                                      f"{type(value).__name__} ({value!r})")
        return value

    def launch(self, owner: Union[DeadlinePlugin, ManagedProcess], label: str, *, with_stdin: bool = False,
               initialize: bool = True) -> ProcessTree:
        """Start ``owner``'s process (see ManagedProcess for the order of its callbacks)."""
        if initialize:
            invoke(owner, "InitializeProcessCallback")
        invoke(owner, "PreRenderTasksCallback")
        executable = self._callback_text(owner, "RenderExecutableCallback", required=True)
        arguments = self._callback_text(owner, "RenderArgumentCallback", required=False)
        startup = self._callback_text(owner, "StartupDirectoryCallback", required=False).strip()
        if not os.path.isfile(executable):
            raise FailRenderError(f"the render executable {executable!r} does not exist on {self.worker.name}")
        if not os.access(executable, os.X_OK):
            raise FailRenderError(f"the render executable {executable!r} is not executable on {self.worker.name}")
        if startup and not os.path.isdir(startup):
            raise FailRenderError(f"the startup directory {startup!r} does not exist on {self.worker.name}")
        argv = [executable] + split_arguments(arguments)
        self.log("INFO", f"Executable: \"{executable}\"")
        self.log("INFO", f"Argument: {arguments}")
        self.log("INFO", f"Startup Directory: \"{startup or os.getcwd()}\"")
        extra = owner.__dict__.get("_dl_env", {}) if isinstance(owner, ManagedProcess) else {}
        tree = ProcessTree(argv, cwd=startup or None, env=self._environment(extra), label=label,
                           with_stdin=with_stdin)
        self.log("INFO", f"Process started: pid {tree.pid} ({_settings_text(owner)})")
        if isinstance(owner, ManagedProcess) and owner not in self.launched:
            self.launched.append(owner)
        return tree

    # -- stdout --------------------------------------------------------------------------------------------

    def handle_lines(self, owner: Any, lines: List[str], *, handling: bool) -> None:
        """Log each line as STDOUT and run ``owner``'s matching handlers on this thread. A handler's
        exception (FailRender) propagates; the lines after it are logged without handlers."""
        for index, line in enumerate(lines):
            try:
                self._handle_line(owner, line, handling=handling)
            except BaseException:
                for rest in lines[index + 1:]:
                    self.log("STDOUT", rest)
                raise

    def _handle_line(self, owner: Any, line: str, *, handling: bool) -> None:
        suppressed = False
        try:
            if handling and owner.StdoutHandling:
                for handler in list(owner.__dict__["_dl_handlers"]):
                    match = handler.__dict__["_dl_regex"].fullmatch(line)
                    event = event_of(handler, "HandleCallback")
                    if match is None or event is None or not event.handler_count:
                        continue
                    owner.__dict__["_dl_match"], owner.__dict__["_dl_suppress"] = match, False
                    try:
                        event.invoke()
                    finally:
                        suppressed = suppressed or owner.__dict__["_dl_suppress"]
                        owner.__dict__["_dl_match"], owner.__dict__["_dl_suppress"] = None, False
        finally:
            if not suppressed:
                self.log("STDOUT", line)

    # -- run a process to its end --------------------------------------------------------------------------

    def run_managed(self, plugin: DeadlinePlugin, process: ManagedProcess) -> None:
        self.raise_if_aborted()
        tree = self.launch(process, type(process).__name__)
        self._run_to_exit(plugin, process, tree)
        self._finish(process, tree)

    def run_simple(self, plugin: DeadlinePlugin) -> None:
        tree = self.launch(plugin, self.plugin_name, initialize=False)
        self._run_to_exit(plugin, plugin, tree)
        self._finish(plugin, tree)

    def stop(self, owner: Any, tree: ProcessTree, why: str) -> None:
        """Kill ``owner``'s process now (SIGKILL, no grace), with its children when it set UseProcessTree;
        children left alive without it are named in a WARNING (they live on, holding what they held)."""
        if not tree.running and not (_process_tree(owner) and tree.group_members()):
            return
        what = "process tree" if _process_tree(owner) else "process"
        self.log("INFO", f"{why}: killing the {what} of {tree.label} (pid {tree.pid})")
        survivors = tree.kill(tree=_process_tree(owner))
        if survivors and not _process_tree(owner):
            self.log("WARNING", f"{tree.label}: processes {survivors} it started outlive it (UseProcessTree is "
                                "not set)")

    def _run_to_exit(self, plugin: DeadlinePlugin, owner: Any, tree: ProcessTree) -> None:
        """Feed the output to the handlers until the process exits; kill it on cancel, on a handler's
        FailRender, on AbortRender, or on any exception (:meth:`stop`). Monitored processes that exit
        meanwhile are noticed too (MonitoredManagedProcessExit, on this thread)."""
        try:
            while tree.running:
                self.handle_lines(owner, tree.take_lines(_POLL_SECONDS), handling=True)
                self.raise_if_aborted()
                if self._cancel.is_set():
                    self.stop(owner, tree, "Deadline canceled the task")
                    self.handle_lines(owner, tree.take_lines(), handling=False)
                    if isinstance(owner, ManagedProcess):
                        owner.ExitCode = tree.exit_status() or 0
                    raise TaskCanceledError("Received cancel task command from Deadline.")
                self._notice_exits(plugin)
            self._drain_after_exit(owner, tree, handling=True)
        except BaseException:
            self.stop(owner, tree, "the task stopped")
            self.handle_lines(owner, tree.take_lines(), handling=False)
            tree.close()
            raise

    def _drain_after_exit(self, owner: Any, tree: ProcessTree, *, handling: bool) -> None:
        """The process exited: handle the rest of its output. Processes it left in its tree get
        ``_OUTPUT_AFTER_EXIT_SECONDS`` to close the pipes, then are killed (UseProcessTree) or left; pipes
        still held open after that are abandoned with a WARNING."""
        deadline = time.monotonic() + _OUTPUT_AFTER_EXIT_SECONDS
        killed = False
        while not tree.output_closed:
            self.handle_lines(owner, tree.take_lines(_POLL_SECONDS), handling=handling)
            if time.monotonic() > deadline:
                if killed:
                    self.log("WARNING", f"{tree.label}: its output stays open (held by a process it left running): "
                                        "no longer reading it")
                    break
                self._leftovers(owner, tree)
                killed, deadline = True, time.monotonic() + 2.0
        self.handle_lines(owner, tree.take_lines(), handling=handling)

    def _leftovers(self, owner: Any, tree: ProcessTree) -> None:
        """Processes the exited process left in its group: killed with UseProcessTree, else left running."""
        members = tree.group_members()
        if not members:
            return
        if _process_tree(owner):
            self.log("WARNING", f"{tree.label} exited but left processes {members} in its process tree: "
                                "killing them")
            tree.kill(tree=True)
        else:
            self.log("WARNING", f"{tree.label} exited but left processes {members} running (UseProcessTree is "
                                "not set)")

    def _finish(self, owner: Any, tree: ProcessTree) -> None:
        self._leftovers(owner, tree)
        tree.close()
        code = tree.exit_status()
        assert code is not None
        self.log("INFO", f"Process exit code: {code}")
        if isinstance(owner, ManagedProcess):
            owner.ExitCode = code
        called, _ = invoke(owner, "CheckExitCodeCallback", code)
        if not called and code != 0:
            raise FailRenderError(f"Error: Renderer returned non-zero error code, {code}. Check the log for more "
                                  "information.")
        invoke(owner, "PostRenderTasksCallback")

    def run_process(self, plugin: DeadlinePlugin, executable: str, arguments: str, startup: str,
                    timeout_ms: int) -> int:
        self.raise_if_aborted()
        if not os.path.isfile(executable):
            raise DeadlineException(f"RunProcess: the executable {executable!r} does not exist")
        if startup and not os.path.isdir(startup):
            raise DeadlineException(f"RunProcess: the startup directory {startup!r} does not exist")
        tree = ProcessTree([executable] + split_arguments(arguments), cwd=startup or None,
                           env=self._environment({}), label=os.path.basename(executable))
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000.0
        try:
            while tree.running:
                self.handle_lines(self, tree.take_lines(_POLL_SECONDS), handling=False)
                if self._cancel.is_set():
                    self.stop(plugin, tree, "Deadline canceled the task")
                    raise TaskCanceledError("Received cancel task command from Deadline.")
                if deadline is not None and time.monotonic() > deadline:
                    self.stop(plugin, tree, "RunProcess timed out")
                    raise DeadlineException(f"RunProcess: {executable} did not exit within {timeout_ms} ms")
            self._drain_after_exit(plugin, tree, handling=False)
            self._leftovers(plugin, tree)
        finally:
            self.stop(plugin, tree, "the task stopped")
            self.handle_lines(self, tree.take_lines(), handling=False)
            tree.close()
        return tree.exit_status() or 0

    # -- monitored processes -------------------------------------------------------------------------------

    def monitored(self, name: str) -> _Monitored:
        entry = self._monitored.get(name)
        if entry is None:
            raise DeadlineException(f"there is no monitored managed process named {name!r}")
        return entry

    def _notice_exits(self, plugin: DeadlinePlugin) -> None:
        """Once per monitored process that exited by itself (and whose exit checking is on): call the plugin's
        MonitoredManagedProcessExitCallback with the process name, on this thread; a plugin without one fails
        the task (the stock plugins' own handlers fail it with this text; Fusion.py turns the checking off for
        processes it expects to exit)."""
        for name, entry in list(self._monitored.items()):
            if not entry.exit_reported and entry.exit_checking and not entry.tree.running:
                entry.exit_reported = True
                self.log("INFO", f"Monitored managed process \"{name}\" exited with code {entry.tree.exit_status()}")
                called, _ = invoke(plugin, "MonitoredManagedProcessExitCallback", name)
                if not called:
                    raise FailRenderError(f"Monitored managed process \"{name}\" has exited or been terminated.")

    def set_exit_checking(self, name: str, enabled: bool) -> None:
        self.monitored(name).exit_checking = enabled

    def monitored_exit_code(self, name: str) -> int:
        code = self.monitored(name).tree.exit_status()
        if code is None:
            raise DeadlineException(f"the monitored managed process {name!r} is still running: no exit code yet")
        return code

    def start_monitored(self, plugin: DeadlinePlugin, name: str, process: ManagedProcess) -> None:
        self.raise_if_aborted()
        existing = self._monitored.get(name)
        if existing is not None and existing.tree.running:
            raise DeadlineException(f"a monitored managed process named {name!r} is already running")
        if existing is not None:
            self._drop_monitored(name, existing)
        tree = self.launch(process, name, with_stdin=True)
        self._monitored[name] = _Monitored(tree, process)

    def verify_monitored(self, plugin: DeadlinePlugin, name: str) -> None:
        self.raise_if_aborted()
        entry = self.monitored(name)
        self._notice_exits(plugin)
        if not entry.tree.running:
            raise FailRenderError(f"Monitored managed process \"{name}\" has exited or been terminated (exit code "
                                  f"{entry.tree.exit_status()}).")

    def monitored_is_running(self, plugin: DeadlinePlugin, name: str) -> bool:
        entry = self._monitored.get(name)
        if entry is None:
            return False
        self._notice_exits(plugin)
        return entry.tree.running

    def flush_monitored(self, plugin: DeadlinePlugin, name: str, *, handling: bool) -> None:
        self.raise_if_aborted()
        entry = self.monitored(name)
        self.handle_lines(entry.owner, entry.tree.take_lines(), handling=handling)
        self._notice_exits(plugin)

    def wait_monitored(self, plugin: DeadlinePlugin, name: str, timeout_ms: int) -> bool:
        entry = self.monitored(name)
        exited = entry.tree.wait(None if timeout_ms < 0 else timeout_ms / 1000.0) is not None
        self._notice_exits(plugin)
        return exited

    def write_stdin_monitored(self, plugin: DeadlinePlugin, name: str, text: str) -> None:
        entry = self.monitored(name)
        if not entry.tree.running:
            raise DeadlineException(f"the monitored managed process {name!r} has exited: cannot write to it")
        entry.tree.write_stdin(text)

    def shutdown_monitored(self, plugin: DeadlinePlugin, name: str) -> None:
        """Kill the process (SIGKILL; its tree with UseProcessTree). Unknown names are ignored."""
        entry = self._monitored.get(name)
        if entry is None:
            self.host.emit(f"{self.worker.thread_number}: DEBUG: no monitored managed process {name!r} to shut down")
            return
        self.log("INFO", f"Shutting down monitored managed process \"{name}\"")
        entry.exit_reported = True
        self._drop_monitored(name, entry)

    def _drop_monitored(self, name: str, entry: _Monitored) -> None:
        self.stop(entry.owner, entry.tree, f"Monitored managed process \"{name}\" is shut down")
        self.handle_lines(entry.owner, entry.tree.take_lines(), handling=False)
        entry.tree.close()
        self._monitored.pop(name, None)

    def kill_all_monitored(self) -> List[str]:
        names = list(self._monitored)
        for name in names:
            entry = self._monitored[name]
            if entry.tree.running:
                self.host.emit(f"{self.worker.thread_number}: WARNING: monitored managed process \"{name}\" still "
                               "ran when the plugin was unloaded: killing it")
            self._drop_monitored(name, entry)
        return names


def _ignore(value: Any) -> None:
    return None


# ---------------------------------------------------------------------------------------------------------
# the host: what a Worker thread does with plugins


@dataclass
class _Loaded:
    module: ModuleType
    module_name: str
    plugin: DeadlinePlugin
    session: PluginSession
    path_entry: str
    start_entered: bool = False


class PluginHost:
    """Loads a job's plugin and drives its lifecycle the way a Worker thread does:

    InitializeProcess (when the plugin is loaded) → StartJob (once per job on this Worker thread, Advanced
    plugins) → RenderTasks per task (Simple plugins: Pre/RenderExecutable/RenderArgument/run/CheckExitCode/
    Post) → EndJob when the Worker leaves the job (:meth:`leave_job`: another job, idle, shutdown) and after
    a task error → CleanupDeadlinePlugin (the plugin is unloaded; the next task loads it afresh).

    A canceled task (``cancel`` set) reports nothing and keeps the plugin loaded: a job requeued onto this
    Worker goes straight back into RenderTasks, as in Deadline."""

    def __init__(self, worker: WorkerSettings, repository: Union[Path, RepositoryFolder], backend: RepositoryBackend,
                 *, log_sink: Optional[LogSink] = None) -> None:
        self.worker = worker
        self.folder = repository if isinstance(repository, RepositoryFolder) else RepositoryFolder(Path(repository))
        self.backend = backend
        self.connection = RepositoryConnection(self.folder, backend)
        connect(self.connection)
        self._sink = log_sink
        self.calls: List[str] = []
        self.cleanup_warnings: List[str] = []
        self._loaded: Optional[_Loaded] = None
        self._job_id: Optional[str] = None
        self._closed = False

    @property
    def current_job_id(self) -> Optional[str]:
        return self._job_id

    def emit(self, line: str) -> None:
        if self._sink is not None:
            self._sink(line)
        else:
            log.info("%s: %s", self.worker.name, line)

    # -- tasks ---------------------------------------------------------------------------------------------

    def render_task(self, task: TaskSpec, *, cancel: threading.Event,
                    progress: Optional[Callable[[float], None]] = None,
                    status: Optional[Callable[[str], None]] = None) -> TaskOutcome:
        if self._closed:
            raise RuntimeError("this PluginHost is closed")
        if self._job_id is not None and self._job_id != task.job_id:
            self.leave_job()
        task_log: List[str] = []
        data = self.backend.job_json(task.job_id)
        if data is None:
            return TaskOutcome("canceled", "", "")
        self._job_id = task.job_id
        job = Job(data)
        session: Optional[PluginSession] = None
        try:
            if self._loaded is None:
                self._prepare_job_folders(task.job_id, data)
                self._load(job, task, cancel, progress, status, task_log)
            assert self._loaded is not None
            loaded = self._loaded
            session = loaded.session
            session.begin_task(task, job, cancel, progress or _ignore, status or _ignore, task_log)
            self._render(loaded, task)
            session.raise_if_aborted()
            if cancel.is_set():
                return self._canceled(task_log)
            return TaskOutcome("completed", "", "\n".join(task_log))
        except TaskCanceledError:
            return self._canceled(task_log)
        except (Exception, SystemExit) as exc:  # a task error, whatever the plugin raised
            if cancel.is_set():
                return self._canceled(task_log)
            return self._failed(exc, task_log)
        finally:
            if session is not None:
                session.end_task()

    def _canceled(self, task_log: List[str]) -> TaskOutcome:
        self.emit(f"{self.worker.thread_number}: INFO: the task was canceled by Deadline")
        loaded = self._loaded
        if loaded is not None:
            try:
                invoke(loaded.plugin, "RenderCanceledCallback")
            except (Exception, SystemExit) as exc:
                self.emit(f"{self.worker.thread_number}: WARNING: RenderCanceled raised {type(exc).__name__}: {exc}")
        return TaskOutcome("canceled", "", "\n".join(task_log))

    def _failed(self, exc: BaseException, task_log: List[str]) -> TaskOutcome:
        error = str(exc) if isinstance(exc, DeadlineException) else f"Python Exception: {type(exc).__name__}: {exc}"
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
        for line in [f"Error: {error}"] + details.splitlines():
            entry = f"{self.worker.thread_number}: ERROR: {line}"
            task_log.append(entry)
            self.emit(entry)
        self._end_job_and_unload("a task error")
        return TaskOutcome("failed", error, "\n".join(task_log))

    def _render(self, loaded: _Loaded, task: TaskSpec) -> None:
        plugin, session = loaded.plugin, loaded.session
        advanced = plugin.PluginType is PluginType.Advanced
        if advanced and not loaded.start_entered:
            loaded.start_entered = True
            self.calls.append("StartJob")
            invoke(plugin, "StartJobCallback")
        single = plugin.SingleFramesOnly
        called, answer = invoke(plugin, "IsSingleFramesOnlyCallback")
        if called:
            if not isinstance(answer, bool):
                raise PluginContractError(f"IsSingleFramesOnly must return True or False, not {answer!r}")
            single = answer
        spans = [(f, f) for f in task.frames] if single else [(task.frames[0], task.frames[-1])]
        for start, end in spans:
            session.set_frames(start, end)
            self.calls.append(f"RenderTasks({task.job_id}:{task.task_id} {start}-{end})")
            if advanced:
                invoke(plugin, "RenderTasksCallback")
            else:
                session.run_simple(plugin)
            session._notice_exits(plugin)

    # -- loading -------------------------------------------------------------------------------------------

    def _prepare_job_folders(self, job_id: str, data: Dict[str, Any]) -> None:
        jobs_data = self.worker.home / "jobsData" / job_id
        jobs_data.mkdir(parents=True, exist_ok=True)
        aux = self.folder.aux_dir(job_id)
        for name in data.get("Aux", []):
            source = aux / name
            if source.is_file() and not (jobs_data / name).exists():
                shutil.copy2(source, jobs_data / name)

    def _load(self, job: Job, task: TaskSpec, cancel: threading.Event, progress: Any, status: Any,
              task_log: List[str]) -> None:
        name = job.JobPlugin
        try:
            source = self.folder.plugin_dir(name)
        except RepositoryError as exc:
            raise PluginContractError(str(exc)) from None
        local = self.worker.home / "plugins" / job.JobId
        if local.exists():
            shutil.rmtree(local)
        shutil.copytree(source, local)
        params = read_param_file(local / f"{name}.param")
        read_param_file(local / f"{name}.options")  # refused early when malformed, as Deadline would
        module_name = f"deadline_plugin_{name}_{next(_module_counter)}"
        sys.path.insert(0, str(local))
        try:
            spec = importlib.util.spec_from_file_location(module_name, local / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            factory = getattr(module, "GetDeadlinePlugin", None)
            if not callable(factory):
                raise PluginContractError(f"{name}.py has no GetDeadlinePlugin() function: Deadline cannot load it")
            plugin = factory()
            if not isinstance(plugin, DeadlinePlugin):
                raise PluginContractError(f"{name}.py GetDeadlinePlugin() returned {type(plugin).__name__}, not a "
                                          "Deadline.Plugins.DeadlinePlugin")
            if not is_initialised(plugin):
                raise PluginContractError(f"{type(plugin).__name__}.__init__ did not call super().__init__() "
                                          "(Deadline 10 needs it under Python 3)")
        except BaseException:
            _forget_modules(module_name, local)
            sys.path.remove(str(local))
            raise
        session = PluginSession(self, name, local, params, job.JobId)
        plugin.__dict__["_dl_session"] = session
        self._loaded = _Loaded(module, module_name, plugin, session, str(local))
        session.begin_task(task, job, cancel, progress or _ignore, status or _ignore, task_log)
        self.calls.append("InitializeProcess")
        invoke(plugin, "InitializeProcessCallback")
        session.initialized = True
        self._check_lifecycle(plugin)

    @staticmethod
    def _check_lifecycle(plugin: DeadlinePlugin) -> None:
        registered = {name for name in SIMPLE_ONLY_CALLBACKS + ADVANCED_ONLY_CALLBACKS
                      if (event_of(plugin, name) is not None and event_of(plugin, name).handler_count)}
        kind = type(plugin).__name__
        if plugin.PluginType is PluginType.Advanced:
            if "RenderTasksCallback" not in registered:
                raise PluginContractError(f"{kind} is PluginType.Advanced but has no RenderTasksCallback handler: "
                                          "Deadline would have nothing to call for each task")
            wrong = sorted(registered & set(SIMPLE_ONLY_CALLBACKS))
            if wrong:
                raise PluginContractError(f"{kind} is PluginType.Advanced but registers {', '.join(wrong)}, which "
                                          "only Simple plugins use (give them to a ManagedProcess instead)")
        else:
            if "RenderExecutableCallback" not in registered:
                raise PluginContractError(f"{kind} is a Simple plugin (the default PluginType) without a "
                                          "RenderExecutableCallback handler; an Advanced plugin must set "
                                          "self.PluginType = PluginType.Advanced in InitializeProcess")
            wrong = sorted(registered & set(ADVANCED_ONLY_CALLBACKS))
            if wrong:
                raise PluginContractError(f"{kind} is a Simple plugin but registers {', '.join(wrong)}: set "
                                          "self.PluginType = PluginType.Advanced in InitializeProcess")

    # -- leaving -------------------------------------------------------------------------------------------

    def leave_job(self, reason: str = "the Worker left the job") -> None:
        """EndJob (when StartJob ran) and CleanupDeadlinePlugin, then forget the job's local folders."""
        job_id = self._job_id
        self._end_job_and_unload(reason)
        self._job_id = None
        if job_id is not None:
            for folder in (self.worker.home / "jobsData" / job_id, self.worker.home / "temp" / job_id,
                           self.worker.home / "plugins" / job_id):
                shutil.rmtree(folder, ignore_errors=True)

    def _end_job_and_unload(self, reason: str) -> None:
        loaded = self._loaded
        if loaded is None:
            return
        plugin, session = loaded.plugin, loaded.session
        session.plugin_thread = threading.get_ident()
        if loaded.start_entered and plugin.PluginType is PluginType.Advanced:
            self.calls.append("EndJob")
            self.emit(f"{self.worker.thread_number}: INFO: EndJob ({reason})")
            try:
                invoke(plugin, "EndJobCallback")
            except (Exception, SystemExit) as exc:
                self.emit(f"{self.worker.thread_number}: WARNING: EndJob raised {type(exc).__name__}: {exc}")
        self._unload(loaded)

    def _unload(self, loaded: _Loaded) -> None:
        plugin, session = loaded.plugin, loaded.session
        self.calls.append("CleanupDeadlinePlugin")
        cleanup = getattr(loaded.module, "CleanupDeadlinePlugin", None)
        try:
            if callable(cleanup):
                cleanup(plugin)
        except (Exception, SystemExit) as exc:
            self.emit(f"{self.worker.thread_number}: WARNING: CleanupDeadlinePlugin raised "
                      f"{type(exc).__name__}: {exc}")
        self._check_leaks(plugin, session)
        session.kill_all_monitored()
        plugin.__dict__["_dl_session"] = None
        self._loaded = None
        _forget_modules(loaded.module_name, Path(loaded.path_entry))
        if loaded.path_entry in sys.path:
            sys.path.remove(loaded.path_entry)

    def _check_leaks(self, plugin: DeadlinePlugin, session: PluginSession) -> None:
        owners: List[Any] = [plugin, *plugin.__dict__["_dl_handlers"]]
        for process in session.launched:
            owners.extend([process, *process.__dict__["_dl_handlers"]])
        for owner in owners:
            left = handlers_left(owner)
            if left:
                text = (f"{type(owner).__name__} still holds handlers on {', '.join(left)} after "
                        "CleanupDeadlinePlugin: Cleanup should `del` every callback it added")
                self.cleanup_warnings.append(text)
                self.emit(f"{self.worker.thread_number}: WARNING: {text}")

    def close(self) -> None:
        """Leave the current job (EndJob, Cleanup) and release the repository connection."""
        if self._closed:
            return
        try:
            self.leave_job("the Worker is shutting down")
        finally:
            self._closed = True
            disconnect(self.connection)


def _forget_modules(module_name: str, folder: Path) -> None:
    """Forget the plugin module and every module imported from its folder (the next load is fresh)."""
    sys.modules.pop(module_name, None)
    prefix = str(folder.resolve()) + os.sep
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and str(Path(path).resolve()).startswith(prefix):
            sys.modules.pop(name, None)


# ---------------------------------------------------------------------------------------------------------
# event plugins


class EventSession:
    """What a loaded event listener's API calls reach."""

    def __init__(self, host: EventHost, name: str, params: ParamFile) -> None:
        self.host = host
        self.name = name
        self.params = params

    def log(self, level: str, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.host.emit(f"Event Plugin {self.name}: {level}: {line}")

    def config_value(self, key: str) -> Optional[str]:
        settings = self.host.folder.event_settings(self.name)
        if key in settings:
            return settings[key]
        return self.params.default(key)


@dataclass(frozen=True)
class EventRun:
    event: str
    job_id: str
    listener: str
    error: str = ""


class EventHost:
    """Runs the repository's event plugins for job events, as the Worker that caused them does.

    For each event plugin folder (sorted by name): its State (settings/events/<Name>.json, else the
    .param's ``[State] Default``, else Disabled) decides: ``Global Enabled`` runs for every job,
    ``Opt-In`` only for jobs whose ``EventOptIns`` name it (exact name), ``Disabled`` never; a job submitted
    with SuppressEvents runs none. Each run loads the file afresh, calls ``GetDeadlineEventListener()``, the
    ``On<Event>Callback`` handlers with a fresh Job, then ``CleanupDeadlineEventListener(listener)``. A
    listener that raises is logged (WARNING with its traceback) and recorded; the others still run."""

    def __init__(self, repository: Union[Path, RepositoryFolder], backend: RepositoryBackend, *,
                 log_sink: Optional[LogSink] = None) -> None:
        self.folder = repository if isinstance(repository, RepositoryFolder) else RepositoryFolder(Path(repository))
        self.backend = backend
        self.connection = RepositoryConnection(self.folder, backend)
        connect(self.connection)
        self._sink = log_sink
        self.runs: List[EventRun] = []
        self.cleanup_warnings: List[str] = []

    def emit(self, line: str) -> None:
        if self._sink is not None:
            self._sink(line)
        else:
            log.info("%s", line)

    def fire(self, event: str, job_id: str) -> List[str]:
        """Run ``event`` (``OnJobFinished``...) for ``job_id``; returns the names of the listeners run."""
        callback = f"{event}Callback"
        data = self.backend.job_json(job_id)
        if data is None:
            return []
        job = Job(data)
        if job.JobSuppressEvents:
            return []
        ran = []
        for name in self.folder.event_names():
            try:
                folder = self.folder.event_dir(name)
                params = read_param_file(folder / f"{name}.param")
                state = self.folder.event_state(name, params)
            except (RepositoryError, ParamFileError) as exc:
                self.emit(f"Event Plugin {name}: WARNING: not run: {exc}")
                self.runs.append(EventRun(event, job_id, name, f"{type(exc).__name__}: {exc}"))
                continue
            if state == "Disabled" or (state == "Opt-In" and name not in job.EventOptIns):
                continue
            error = self._run_listener(name, folder, params, callback, Job(data))
            self.runs.append(EventRun(event, job_id, name, error))
            ran.append(name)
        return ran

    def _run_listener(self, name: str, folder: Path, params: ParamFile, callback: str, job: Job) -> str:
        module_name = f"deadline_event_{name}_{next(_module_counter)}"
        sys.path.insert(0, str(folder))
        try:
            spec = importlib.util.spec_from_file_location(module_name, folder / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            factory = getattr(module, "GetDeadlineEventListener", None)
            if not callable(factory):
                raise PluginContractError(f"{name}.py has no GetDeadlineEventListener() function")
            listener = factory()
            if not isinstance(listener, DeadlineEventListener) or not is_initialised(listener):
                raise PluginContractError(f"{name}.py GetDeadlineEventListener() must return an initialised "
                                          "Deadline.Events.DeadlineEventListener (call super().__init__())")
            listener.__dict__["_dl_session"] = EventSession(self, name, params)
            try:
                self.emit(f"Event Plugin {name}: running {callback[:-8]} for job {job.JobId}")
                invoke(listener, callback, job)
            finally:
                cleanup = getattr(module, "CleanupDeadlineEventListener", None)
                if callable(cleanup):
                    cleanup(listener)
                left = handlers_left(listener)
                if left:
                    text = f"event plugin {name} still holds handlers on {', '.join(left)} after its cleanup"
                    self.cleanup_warnings.append(text)
                    self.emit(f"Event Plugin {name}: WARNING: {text}")
                listener.__dict__["_dl_session"] = None
            return ""
        except (Exception, SystemExit) as exc:
            details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
            self.emit(f"Event Plugin {name}: WARNING: {callback[:-8]} failed: {type(exc).__name__}: {exc}")
            for line in details.splitlines():
                self.emit(f"Event Plugin {name}: WARNING: {line}")
            return f"{type(exc).__name__}: {exc}"
        finally:
            _forget_modules(module_name, folder)
            if str(folder) in sys.path:
                sys.path.remove(str(folder))

    def close(self) -> None:
        disconnect(self.connection)
