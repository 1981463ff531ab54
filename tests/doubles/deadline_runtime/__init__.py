"""The Deadline 10 plugin runtime double: ``Deadline.Plugins``, ``Deadline.Scripting``, ``Deadline.Events``,
``Deadline.Jobs`` and ``FranticX.Processes`` for real plugin files, and the host that runs them as a Worker
does (:mod:`.runtime`). Built from shared/reference/deadline.md (sections 4-7) and public plugins; it never
imports product code. Put :data:`SITE_DIR` on ``sys.path`` and load plugins with :class:`.runtime.PluginHost`.

Lifecycle (PluginHost)
    The plugin folder ``<repository>/custom/plugins/<Plug>/`` is copied to ``<worker home>/plugins/<job>/``
    (``GetPluginDirectory()`` is that copy), put first on ``sys.path``, and ``<Plug>.py`` is imported afresh
    (modules imported from the folder are forgotten at unload). ``GetDeadlinePlugin()`` must return a
    ``DeadlinePlugin`` whose ``__init__`` called ``super().__init__()``. Then: InitializeProcess → (Advanced)
    StartJob once per job per Worker thread → RenderTasks per task (Simple: PreRenderTasks, RenderExecutable,
    RenderArgument, StartupDirectory, run with the plugin's stdout handlers, CheckExitCode, PostRenderTasks)
    → EndJob when the Worker leaves the job (another job, idle, shutdown) and after a task error (only if
    StartJob ran) → ``CleanupDeadlinePlugin(plugin)``. After an error the plugin is unloaded: the next task
    loads it afresh. ``SingleFramesOnly`` (or IsSingleFramesOnly's answer) renders a task one frame at a time.
    A canceled task reports nothing and keeps the plugin loaded (RenderCanceled is called).

Strictness
    * reading an attribute Deadline lacks → ``AttributeError("Deadline's DeadlinePlugin has no attribute 'X'")``
      (also ManagedProcess, StdoutHandler, DeadlineEventListener, Job, Task, RepositoryUtils, FileUtils...);
    * wrong argument types → TypeError (``str`` for strings, ``int`` not bool, ``bool``); ``SetProgress``
      takes a finite number in 0-100 (ValueError otherwise);
    * callbacks are events: ``self.XCallback += fn``, ``del self.XCallback``; assigning → TypeError; handlers
      still attached after CleanupDeadlinePlugin are reported in ``PluginHost.cleanup_warnings`` and the log;
    * an Advanced plugin without RenderTasksCallback, a Simple one without RenderExecutableCallback, or either
      registering the other kind's callbacks → the task fails (PluginContractError) with a message saying so;
      setting ``PluginType`` after InitializeProcess → RuntimeError;
    * GetPluginInfoEntry / GetConfigEntry of a missing key raise ``DeadlineException`` (the task's error
      report is the message); the WithDefault variants return the default (which must have the right type).

Processes (evidence in tests/doubles/test_deadline_runtime_contract.py, "processes")
    Each managed process runs in its own process group inside the Worker's session (see :mod:`.processes`),
    with stdout and stderr on two pipes read separately (no order between them: a stderr line is handed over
    one poll late), both seen by the stdout handlers and logged as STDOUT; the environment ``os.environ`` (the
    Worker's: :mod:`.worker_environment` builds one with Deadline's library folders and a studio proxy) +
    the job's ``EnvironmentKeyValueN`` + ``SetProcessEnvironmentVariable`` + the ManagedProcess's
    ``SetEnvironmentVariable`` (later wins), its StartupDirectory (blank: the Worker's current folder), the
    argument string split like .NET does (double quotes only). Lines are matched with ``re.fullmatch``.
    "Process started" in the log names the process's ``UseProcessTree`` and ``TerminateOnExit``.

    * Stopping a process is a hard kill (SIGKILL at once, no grace: .NET's ``Process.Kill``): the process
      alone, or with every process it started when it set ``UseProcessTree = True``; without it, its children
      live on (a WARNING names them).
    * ``RunManagedProcess(mp)`` blocks, running the handlers on the plugin's thread as lines arrive; a
      handler's FailRender (or any exception) kills the process and fails the task; on cancel it kills the
      process and raises ``TaskCanceledError``; it returns None: read ``mp.ExitCode``, set before
      CheckExitCode runs (no CheckExitCode handler: non-zero fails the task with "Error: Renderer returned
      non-zero error code, N..."). Processes left in the group after the process exits get 0.5 s to close
      its output, then are killed with UseProcessTree (WARNING) or left running (WARNING).
    * Monitored processes run in the background; their output is buffered and their handlers run on the
      plugin's thread when it calls ``FlushMonitoredManagedProcessStdout`` (``...NoHandling`` logs without
      handlers), as Deadline's stock plugins expect. ``MonitoredManagedProcessIsRunning`` is the truth (unknown
      name: False); ``VerifyMonitoredManagedProcess`` fails the task when it exited;
      ``WaitForMonitoredManagedProcessToExit(name, ms)`` → True once exited; ``ShutdownMonitoredManagedProcess``
      kills it (unknown names are ignored); ``GetMonitoredManagedProcessExitCode(name)``.
    * A monitored process that exits on its own is noticed on the plugin's thread by a monitored-process call,
      while RunManagedProcess waits, or at the end of RenderTasks: ``MonitoredManagedProcessExit(name)`` is
      called, and a plugin without that callback fails the task ('Monitored managed process "NAME" has exited
      or been terminated.'); ``SetMonitoredManagedProcessExitCheckingFlag(name, False)`` turns this off for
      one process. Whatever still runs when the plugin unloads is killed (WARNING in the log).
    * ``RunProcess(exe, args, dir, timeout_ms)`` returns the exit code; its output goes to the log.
    * Exit codes of processes killed by signal N are 128 + N.

Context
    ``GetCurrentTaskId()`` is text; ``GetThreadNumber()`` 0; ``OverrideGpuAffinity()``/``GpuAffinity()`` from
    the Worker's settings (``[]`` when not overridden; CPU the same); ``GetJobsDataDirectory()`` is
    ``<home>/jobsData/<job>`` with the job's auxiliary files; ``CreateTempDirectory(prefix)`` is
    ``<home>/temp/<job>/<prefix>`` (created if missing, not emptied; removed when the Worker leaves the job).
    ``AbortRender`` from another thread fails the task at the plugin thread's next process call / IsCanceled.
    Between tasks (EndJob when the Worker goes idle) ``IsCanceled()`` is False and progress goes nowhere.
    Log lines are ``<thread>: INFO|WARNING|STDOUT|DEBUG|ERROR: text``; a failed task's log ends with the error
    and its traceback.

Configuration, path mapping, events: see :mod:`.repository` (settings JSON files, path-mapping rules) and
:class:`.runtime.EventHost` (State, Opt-In, SuppressEvents).

Guesses (deadline.md is silent; the double picks the stricter reading where there is one): full-line regex
matches; stderr lines reach the stdout handlers, in no order with stdout's; handlers of monitored processes
run only on Flush; a monitored exit without a MonitoredManagedProcessExit handler fails the task;
RunManagedProcess raises on cancel and returns None; the Worker calls EndJob after a task error only when
StartJob ran; plugin-level stdout handlers do not see a ManagedProcess's output; PluginInfo keys are
case-sensitive; a missing Job PluginInfo/ExtraInfo/environment key reads ""; ``AbortLevel`` has only
``Fatal``; no ``System`` module (plugins must not import .NET).
"""

from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator

SITE_DIR = Path(__file__).resolve().parent / "site"


@contextmanager
def plugin_module(path: Path) -> Iterator[ModuleType]:
    """A Deadline plugin or event file loaded as a module, with the runtime's ``Deadline``/``FranticX``
    packages importable while it is in use (for tests of its pure helpers)."""
    sys.path.insert(0, str(SITE_DIR))
    try:
        spec = importlib.util.spec_from_file_location(Path(path).stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SITE_DIR))


__all__ = ["SITE_DIR", "plugin_module"]
