"""Contract tests: the Deadline 10 plugin runtime double against shared/reference/deadline.md (sections 4-7).

Small sample plugins are written into tmp_path and run by :class:`PluginHost` in this process, over an
in-process Web Service double store (no HTTP, no Worker process: the farm emulator has its own tests). Where
deadline.md is silent these tests pin the double's documented guesses (tests/doubles/deadline_runtime).

Evidence for how a Worker treats the processes a plugin starts (the "processes" tests):

- A stop is a hard kill. Deadline's Worker is a .NET program; ``System.Diagnostics.Process.Kill`` "immediately
  stops the associated process" (https://learn.microsoft.com/dotnet/api/system.diagnostics.process.kill; on
  Unix it sends SIGKILL), so a process gets no SIGTERM to tidy up in: whatever must be undone after a cancel,
  the plugin undoes. [INFERRED: that Deadline's cancel goes through Process.Kill; no source says otherwise.]
- ``UseProcessTree``: Thinkbox's stock CommandLine.py (``ShellManagedProcess.InitializeProcess``) sets
  ``UseProcessTree = True`` and ``TerminateOnExit = True`` under the comment "Ensure child processes are killed
  and the parent process is terminated on exit"; Epic's UnrealEngine5.py (``UnrealEngineCmdManagedProcess``)
  copies it, Nuke.py's ``NukeProcess`` and MicroStation.py set ``UseProcessTree = True`` (github
  applemin/Deadline_Development ``plugins/*``, EpicGamesExt/deadline ``deadline/plugins/UnrealEngine5``). The
  double kills children only for a process that set it (FranticX.Processes.ManagedProcess, Deadline Scripting
  Reference 10.1: https://docs.thinkboxsoftware.com/products/deadline/10.1/2_Scripting%20Reference/
  class_frantic_x_1_1_processes_1_1_managed_process.html).
- ``MonitoredManagedProcessExit``: the stock handlers take the process name and fail the render with
  'Monitored managed process "<name>" has exited or been terminated.' (3dsmax.py, 3dsCmd.py, Fusion.py;
  MicroStation.py fails it too), and Fusion.py calls ``SetMonitoredManagedProcessExitCheckingFlag(name,
  False)`` for processes it expects to exit: Deadline checks monitored exits. The double reads that a plugin
  without a handler gets the failure (the stricter reading). Epic's handler takes no name; the double passes
  it, as Thinkbox's own plugins expect.
- stdout and stderr: the double reads them as two streams with no order between them and hands both to the
  stdout handlers [INFERRED: .NET reads the two pipes with separate asynchronous readers; Thinkbox's RVIO.py
  passes ``-err-to-out`` to bring RV's stderr into its stdout]. A process whose stdout is a line protocol
  must keep its other output from looking like it.
- The Worker's environment: Nuke.py's ``scrubLibPaths`` removes the entries naming "Deadline" from
  ``LD_LIBRARY_PATH``/``DYLD_*`` because "the IlmImf library included with Deadline ... conflicts with the
  exrWriter": Deadline's library folder is in a Worker's environment. Studios set ``http_proxy``; Python's urllib
  (https://docs.python.org/3/library/urllib.request.html, ``getproxies``/``proxy_bypass``) and
  websocket-client send loopback through it unless ``no_proxy`` names it; ``ProxyHandler({})`` disables it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from tests.doubles.deadline.store import JobStore, TaskLease
from tests.doubles.deadline_runtime import SITE_DIR
from tests.doubles.deadline_runtime.processes import pid_alive, split_arguments
from tests.doubles.deadline_runtime.repository import StoreBackend
from tests.doubles.deadline_runtime.runtime import EventHost, PluginHost, TaskOutcome, TaskSpec, WorkerSettings

WORKER = "rig-worker"
PYTHON = sys.executable


# ---------------------------------------------------------------------------------------------------------
# a Worker thread without a Worker process


class Rig:
    """A PluginHost over a JobStore, with helpers to write plugins, submit jobs and run their tasks."""

    def __init__(self, tmp_path: Path, *, gpu_affinity: Optional[Tuple[int, ...]] = None) -> None:
        self.tmp = tmp_path
        self.repository = tmp_path / "repository"
        self.repository.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(aux_root=self.repository)
        self.backend = StoreBackend(self.store)
        self.trace_path = tmp_path / "trace.txt"
        self.lines: List[str] = []
        self.host = PluginHost(WorkerSettings(WORKER, tmp_path / "home", gpu_affinity=gpu_affinity),
                               self.repository, self.backend, log_sink=self.lines.append)

    def plugin(self, name: str, source: str, *, param: str = "", files: Optional[Dict[str, str]] = None) -> Path:
        folder = self.repository / "custom" / "plugins" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        if param:
            (folder / f"{name}.param").write_text(textwrap.dedent(param), encoding="utf-8")
        for file_name, text in (files or {}).items():
            (folder / file_name).write_text(textwrap.dedent(text), encoding="utf-8")
        return folder

    def settings(self, relative: str, data: Any) -> None:
        path = self.repository / "settings" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data), encoding="utf-8")

    def submit(self, plugin: str, frames: str = "1", chunk: int = 1, *, job_info: Optional[Dict[str, Any]] = None,
               **plugin_info: str) -> str:
        info = {"Plugin": plugin, "Frames": frames, "ChunkSize": chunk, "Name": f"{plugin} job"}
        info.update(job_info or {})
        plugin_info.setdefault("Trace", str(self.trace_path))
        return self.store.submit_job({"JobInfo": info, "PluginInfo": plugin_info})["_id"]

    def run(self, *, cancel: Optional[threading.Event] = None,
            progress: Optional[List[float]] = None) -> Tuple[TaskLease, TaskOutcome]:
        """Render the next task and report it to the store as a Worker would."""
        lease = self.store.dequeue_task(WORKER)
        assert lease is not None, "no task to render"
        outcome = self.host.render_task(TaskSpec(lease.job_id, lease.task_id, lease.frames),
                                        cancel=cancel or threading.Event(),
                                        progress=progress.append if progress is not None else None)
        if outcome.state == "completed":
            self.store.complete_task(lease.job_id, lease.task_id, outcome.log, worker=WORKER)
        elif outcome.state == "failed":
            self.store.fail_task(lease.job_id, lease.task_id, outcome.error, outcome.log, worker=WORKER)
        elif self.store.lease_is_current(lease):
            self.store.requeue_task(lease.job_id, lease.task_id, "canceled", worker=WORKER)
        return lease, outcome

    def traced(self) -> List[str]:
        if not self.trace_path.is_file():
            return []
        return self.trace_path.read_text(encoding="utf-8").splitlines()

    def script(self, name: str, code: str) -> str:
        path = self.tmp / name
        path.write_text(textwrap.dedent(code), encoding="utf-8")
        return str(path)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    sys.path.insert(0, str(SITE_DIR))
    made = Rig(tmp_path)
    try:
        yield made
    finally:
        made.host.close()
        sys.path.remove(str(SITE_DIR))


def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------------------
# sample plugins

ADVANCED = '''
import os
import sys
import time

from Deadline.Plugins import DeadlinePlugin, PluginType
from Deadline.Scripting import FileUtils, RepositoryUtils, StringUtils, SystemUtils
from FranticX.Processes import ManagedProcess


def GetDeadlinePlugin():
    return SamplePlugin()


def CleanupDeadlinePlugin(plugin):
    plugin.Cleanup()


def trace(plugin, text):
    with open(plugin.GetPluginInfoEntry("Trace"), "a") as stream:
        stream.write(text + "\\n")


class SamplePlugin(DeadlinePlugin):
    def __init__(self):
        super().__init__()
        self.InitializeProcessCallback += self.InitializeProcess
        self.StartJobCallback += self.StartJob
        self.RenderTasksCallback += self.RenderTasks
        self.EndJobCallback += self.EndJob
        self.RenderCanceledCallback += self.RenderCanceled

    def Cleanup(self):
        trace(self, "Cleanup")
        del self.InitializeProcessCallback
        del self.StartJobCallback
        del self.RenderTasksCallback
        del self.EndJobCallback
        del self.RenderCanceledCallback

    def InitializeProcess(self):
        self.PluginType = PluginType.Advanced
        self.SingleFramesOnly = self.GetBooleanPluginInfoEntryWithDefault("Single", False)
        trace(self, "InitializeProcess")

    def StartJob(self):
        trace(self, "StartJob " + self.GetJob().JobName)

    def RenderTasks(self):
        trace(self, f"RenderTasks {self.GetCurrentTaskId()} {self.GetStartFrame()}-{self.GetEndFrame()}")
        probe = self.GetPluginInfoEntryWithDefault("Probe", "")
        if probe:
            exec(probe, dict(globals(), self=self))

    def EndJob(self):
        trace(self, "EndJob")

    def RenderCanceled(self):
        trace(self, "RenderCanceled")
'''

SCRIPT_PROCESS = '''
import sys
import time

from Deadline.Plugins import DeadlinePlugin, PluginType
from FranticX.Processes import ManagedProcess


def GetDeadlinePlugin():
    return ScriptPlugin()


def CleanupDeadlinePlugin(plugin):
    plugin.Cleanup()


def trace(plugin, text):
    with open(plugin.GetPluginInfoEntry("Trace"), "a") as stream:
        stream.write(text + "\\n")


class Script(ManagedProcess):
    """sys.executable <Script>; ERROR lines fail the render, PROGRESS lines set progress, TICK lines count."""

    def __init__(self, plugin):
        super().__init__()
        self.plugin = plugin
        self.ticks = 0
        self.done = False
        self.seen = []
        self.InitializeProcessCallback += self.InitializeProcess
        self.RenderExecutableCallback += self.RenderExecutable
        self.RenderArgumentCallback += self.RenderArgument
        self.StartupDirectoryCallback += self.StartupDirectory

    def Cleanup(self):
        for handler in self.StdoutHandlers:
            del handler.HandleCallback
        del self.InitializeProcessCallback
        del self.RenderExecutableCallback
        del self.RenderArgumentCallback
        del self.StartupDirectoryCallback

    def InitializeProcess(self):
        self.StdoutHandling = True
        self.UseProcessTree = self.plugin.GetBooleanPluginInfoEntryWithDefault("ProcessTree", True)
        self.TerminateOnExit = True
        self.SetEnvironmentVariable("FROM_PROCESS", "m")
        self.AddStdoutHandlerCallback(r"ERROR (.*)").HandleCallback += self.Error
        self.AddStdoutHandlerCallback(r"PROGRESS ([0-9.]+)").HandleCallback += self.Progress
        self.AddStdoutHandlerCallback(r"TICK (\\d+)").HandleCallback += self.Tick
        self.AddStdoutHandlerCallback(r"(CWD|ENV|PIDS) (.*)").HandleCallback += self.Seen
        self.AddStdoutHandlerCallback("DONE").HandleCallback += self.Done

    def RenderExecutable(self):
        return sys.executable

    def RenderArgument(self):
        return '"' + self.plugin.GetPluginInfoEntry("Script") + '"'

    def StartupDirectory(self):
        return self.plugin.GetPluginInfoEntryWithDefault("Startup", "")

    def Error(self):
        self.plugin.FailRender(self.GetRegexMatch(1))

    def Progress(self):
        self.plugin.SetProgress(float(self.GetRegexMatch(1)))

    def Tick(self):
        self.ticks += 1

    def Seen(self):
        self.seen.append(self.GetRegexMatch(0))

    def Done(self):
        self.done = True


class ScriptPlugin(DeadlinePlugin):
    def __init__(self):
        super().__init__()
        self.server = None
        self.InitializeProcessCallback += self.InitializeProcess
        self.StartJobCallback += self.StartJob
        self.RenderTasksCallback += self.RenderTasks
        self.EndJobCallback += self.EndJob
        self.RenderCanceledCallback += self.RenderCanceled
        self.MonitoredManagedProcessExitCallback += self.ServerExited

    def Cleanup(self):
        if self.server is not None:
            self.server.Cleanup()
        del self.InitializeProcessCallback
        del self.StartJobCallback
        del self.RenderTasksCallback
        del self.EndJobCallback
        del self.RenderCanceledCallback
        del self.MonitoredManagedProcessExitCallback

    def InitializeProcess(self):
        self.PluginType = PluginType.Advanced
        self.StdoutHandling = True

    def StartJob(self):
        self.SetProcessEnvironmentVariable("FROM_PLUGIN", "p")

    def RenderTasks(self):
        mode = self.GetPluginInfoEntry("Mode")
        if mode == "run":
            process = Script(self)
            try:
                self.RunManagedProcess(process)
                trace(self, f"exit code {process.ExitCode}")
            finally:
                for line in process.seen:
                    trace(self, line)
                trace(self, f"IsCanceled {self.IsCanceled()}")
                process.Cleanup()
            return
        if self.server is None:
            self.server = Script(self)
            self.StartMonitoredManagedProcess("server", self.server)
        time.sleep(float(self.GetPluginInfoEntryWithDefault("WaitBeforeFlush", "0")))
        trace(self, f"before flush ticks={self.server.ticks} running={self.MonitoredManagedProcessIsRunning('server')}")
        deadline = time.monotonic() + 20
        while not self.server.done and time.monotonic() < deadline:
            self.FlushMonitoredManagedProcessStdout("server")
            if mode == "until-exit" and not self.MonitoredManagedProcessIsRunning("server"):
                break
            if mode != "until-exit":
                self.VerifyMonitoredManagedProcess("server")
            time.sleep(0.02)
        trace(self, f"after flush ticks={self.server.ticks} done={self.server.done}")
        for line in self.server.seen:
            trace(self, line)
        trace(self, f"running {self.MonitoredManagedProcessIsRunning('server')}")

    def EndJob(self):
        if self.GetBooleanPluginInfoEntryWithDefault("ShutdownInEndJob", True):
            self.ShutdownMonitoredManagedProcess("server")
        trace(self, f"EndJob running={self.MonitoredManagedProcessIsRunning('server')}")

    def RenderCanceled(self):
        trace(self, "RenderCanceled")

    def ServerExited(self, name):
        trace(self, f"MonitoredManagedProcessExit {name}")
'''

SIMPLE = '''
import sys

from Deadline.Plugins import DeadlinePlugin


def GetDeadlinePlugin():
    return CommandPlugin()


def CleanupDeadlinePlugin(plugin):
    plugin.Cleanup()


class CommandPlugin(DeadlinePlugin):
    def __init__(self):
        super().__init__()
        self.InitializeProcessCallback += self.InitializeProcess
        self.RenderExecutableCallback += self.RenderExecutable
        self.RenderArgumentCallback += self.RenderArgument
        self.PreRenderTasksCallback += self.PreRenderTasks
        self.PostRenderTasksCallback += self.PostRenderTasks

    def Cleanup(self):
        for handler in self.StdoutHandlers:
            del handler.HandleCallback
        del self.InitializeProcessCallback
        del self.RenderExecutableCallback
        del self.RenderArgumentCallback
        del self.PreRenderTasksCallback
        del self.PostRenderTasksCallback

    def InitializeProcess(self):
        self.StdoutHandling = True
        self.AddStdoutHandlerCallback(r"Progress ([0-9]+)%").HandleCallback += self.Progress

    def PreRenderTasks(self):
        self.LogInfo("pre " + str(self.GetStartFrame()))

    def RenderExecutable(self):
        return sys.executable

    def RenderArgument(self):
        return '"' + self.GetPluginInfoEntry("Script") + '" ' + str(self.GetStartFrame())

    def PostRenderTasks(self):
        self.LogInfo("post")

    def Progress(self):
        self.SetProgress(float(self.GetRegexMatch(1)))
'''


# ---------------------------------------------------------------------------------------------------------
# lifecycle


def test_advanced_lifecycle_runs_in_deadline_order(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED)
    first = rig.submit("Sample", "1-4", 2)
    rig.submit("Sample", "10", 1)
    outcomes = [rig.run()[1] for _ in range(3)]
    rig.host.leave_job()

    assert [o.state for o in outcomes] == ["completed"] * 3
    assert rig.traced() == [
        "InitializeProcess", "StartJob Sample job", "RenderTasks 0 1-2", "RenderTasks 1 3-4", "EndJob", "Cleanup",
        "InitializeProcess", "StartJob Sample job", "RenderTasks 0 10-10", "EndJob", "Cleanup",
    ]
    assert rig.host.calls == [
        "InitializeProcess", "StartJob", f"RenderTasks({first}:0 1-2)", f"RenderTasks({first}:1 3-4)", "EndJob",
        "CleanupDeadlinePlugin", "InitializeProcess", "StartJob", rig.host.calls[8], "EndJob", "CleanupDeadlinePlugin",
    ]
    assert rig.host.cleanup_warnings == []


def test_a_task_error_ends_the_job_and_the_next_task_loads_the_plugin_afresh(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED, files={"counter.py": "LOADS = []\n"})
    marker = rig.tmp / "failed-once"
    probe = (f"import counter\ncounter.LOADS.append(1)\ntrace(self, 'loads ' + str(len(counter.LOADS)))\n"
             f"if not os.path.exists({str(marker)!r}):\n    open({str(marker)!r}, 'w').close()\n"
             "    self.FailRender('first attempt fails')\n")
    job = rig.submit("Sample", "1", 1, job_info={"OverrideTaskFailureDetection": True,
                                                 "FailureDetectionTaskErrors": 3}, Probe=probe)
    _, failed = rig.run()
    _, completed = rig.run()

    assert failed.state == "failed" and failed.error == "first attempt fails"
    assert "0: ERROR: Error: first attempt fails" in failed.log
    assert completed.state == "completed"
    assert rig.traced() == ["InitializeProcess", "StartJob Sample job", "RenderTasks 0 1-1", "loads 1", "EndJob",
                            "Cleanup", "InitializeProcess", "StartJob Sample job", "RenderTasks 0 1-1", "loads 1"]
    assert rig.store.job_status_text(job) == "Completed"


def test_single_frames_only_renders_a_task_one_frame_at_a_time(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED)
    rig.submit("Sample", "1-3", 3, Single="True")
    _, outcome = rig.run()
    assert outcome.state == "completed"
    assert [line for line in rig.traced() if line.startswith("RenderTasks")] == [
        "RenderTasks 0 1-1", "RenderTasks 0 2-2", "RenderTasks 0 3-3"]


def test_a_simple_plugin_runs_its_executable_with_the_plugins_stdout_handlers(rig: Rig) -> None:
    script = rig.script("simple.py", """
        import sys
        print("Progress 40%", flush=True)
        print("Progress 80%", flush=True)
        sys.exit(0 if sys.argv[1] == "1" else 3)
    """)
    rig.plugin("Command", SIMPLE)
    rig.submit("Command", "1-2", 1, Script=script)
    progress: List[float] = []
    _, good = rig.run(progress=progress)
    _, bad = rig.run()

    assert good.state == "completed", good.error
    assert progress == [40.0, 80.0]
    log = good.log
    assert log.index("0: INFO: pre 1") < log.index("0: STDOUT: Progress 40%") < log.index("0: INFO: post")
    assert bad.state == "failed"
    assert bad.error == "Error: Renderer returned non-zero error code, 3. Check the log for more information."
    assert rig.host.calls[:2] == ["InitializeProcess", f"RenderTasks({rig.store.job_ids()[0]}:0 1-1)"]


# ---------------------------------------------------------------------------------------------------------
# strictness


@pytest.mark.parametrize(("probe", "error"), [
    ("self.SetProgres(5)", "AttributeError: Deadline's DeadlinePlugin has no attribute 'SetProgres'"),
    ("RepositoryUtils.CheckPathMappings('/a')", "AttributeError: Deadline's RepositoryUtils has no attribute "
                                                "'CheckPathMappings'"),
    ("self.GetJob().JobOutputs", "AttributeError: Deadline's Job has no attribute 'JobOutputs'"),
    ("ManagedProcess().RenderExecutable", "AttributeError: Deadline's ManagedProcess has no attribute "
                                          "'RenderExecutable'"),
    ("self.SetProgress('50')", "TypeError: SetProgress's progress must be a number, not str ('50')"),
    ("self.SetProgress(True)", "TypeError: SetProgress's progress must be a number, not bool (True)"),
    ("self.SetProgress(float('nan'))", "ValueError: SetProgress takes a finite percentage from 0 to 100, not nan"),
    ("self.SetProgress(100.5)", "ValueError: SetProgress takes a finite percentage from 0 to 100, not 100.5"),
    ("self.LogInfo(5)", "TypeError: LogInfo's message must be a string, not int (5)"),
    ("self.SetStatusMessage(None)", "TypeError: SetStatusMessage's message must be a string, not NoneType (None)"),
    ("self.GetPluginInfoEntryWithDefault('X', 5)", "TypeError: the default must be a string, not int (5)"),
    ("self.GetIntegerPluginInfoEntryWithDefault('X', True)", "TypeError: the default must be an integer, not bool "
                                                             "(True)"),
    ("self.GetStartFrame(1)", "TypeError: DeadlinePlugin.GetStartFrame() takes 1 positional argument but 2 were "
                              "given"),
    ("RepositoryUtils.GetJob(self.GetJob().JobId)", "TypeError: RepositoryUtils.GetJob() missing 1 required "
                                                    "positional argument: 'invalidate'"),
    ("self.RunManagedProcess(object())", "TypeError: expected a FranticX.Processes.ManagedProcess, not object"),
    ("self.EndJobCallback = self.EndJob", "TypeError: EndJobCallback is an event: add a handler with "
                                          "`self.EndJobCallback += handler` (assigning method to it is not possible in "
                                          "Deadline)"),
    ("self.PluginType = PluginType.Simple", "RuntimeError: PluginType is read once, after InitializeProcess: set it "
                                            "there"),
    ("self.GetPluginInfoEntry('Missing')", "the job's PluginInfo has no key 'Missing' (Job Properties > Plugin); use "
                                           "GetPluginInfoEntryWithDefault for an optional key"),
    ("self.GetBooleanPluginInfoEntry('Trace')", "PluginInfo Trace is"),
])
def test_what_deadline_lacks_or_refuses_fails_the_task(rig: Rig, probe: str, error: str) -> None:
    rig.plugin("Sample", ADVANCED)
    rig.submit("Sample", Probe=probe)
    _, outcome = rig.run()
    assert outcome.state == "failed"
    assert outcome.error.replace("Python Exception: ", "").startswith(error)


def test_plugin_api_is_not_available_before_the_worker_attaches_the_plugin(rig: Rig) -> None:
    from Deadline.Plugins import DeadlinePlugin

    plugin = DeadlinePlugin()
    with pytest.raises(RuntimeError, match="is not running in a Worker"):
        plugin.LogInfo("too early")


@pytest.mark.parametrize(("source", "error"), [
    (ADVANCED.replace("        self.RenderTasksCallback += self.RenderTasks\n", "")
     .replace("        del self.RenderTasksCallback\n", ""),
     "SamplePlugin is PluginType.Advanced but has no RenderTasksCallback handler: Deadline would have nothing to "
     "call for each task"),
    (ADVANCED.replace("        self.PluginType = PluginType.Advanced\n", ""),
     "SamplePlugin is a Simple plugin (the default PluginType) without a RenderExecutableCallback handler"),
    (ADVANCED.replace("        self.RenderCanceledCallback += self.RenderCanceled\n",
                      "        self.RenderCanceledCallback += self.RenderCanceled\n"
                      "        self.RenderExecutableCallback += self.RenderCanceled\n"),
     "SamplePlugin is PluginType.Advanced but registers RenderExecutableCallback, which only Simple plugins use"),
    (ADVANCED.replace("        super().__init__()\n", ""),
     "RuntimeError: SamplePlugin.__init__ must call super().__init__() before using InitializeProcessCallback"),
    (ADVANCED.replace("def GetDeadlinePlugin():", "def GetPlugin():"),
     "Sample.py has no GetDeadlinePlugin() function: Deadline cannot load it"),
    (ADVANCED.replace("        self.InitializeProcessCallback += self.InitializeProcess\n",
                      "        self.InitializeProcessCallback = self.InitializeProcess\n"),
     "TypeError: InitializeProcessCallback is an event"),
])
def test_a_plugin_that_breaks_the_contract_fails_loudly(rig: Rig, source: str, error: str) -> None:
    rig.plugin("Sample", source)
    rig.submit("Sample")
    _, outcome = rig.run()
    assert outcome.state == "failed"
    assert outcome.error.replace("Python Exception: ", "").startswith(error), outcome.error


def test_callbacks_left_after_cleanup_are_reported(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED.replace("        del self.EndJobCallback\n", ""))
    rig.submit("Sample")
    rig.run()
    rig.host.leave_job()
    assert rig.host.cleanup_warnings == [
        "SamplePlugin still holds handlers on EndJobCallback after CleanupDeadlinePlugin: Cleanup should `del` every "
        "callback it added"]
    assert any("WARNING: SamplePlugin still holds handlers on EndJobCallback" in line for line in rig.lines)


def test_events_take_plus_equals_and_del(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED)
    probe = ("seen = []\nself.StartJobCallback += seen.append\nself.StartJobCallback -= seen.append\n"
             "del self.StartJobCallback\ndel self.StartJobCallback\n"
             "self.StartJobCallback += self.StartJob\ntrace(self, 'events ok')\n")
    rig.submit("Sample", Probe=probe)
    _, outcome = rig.run()
    assert outcome.state == "completed", outcome.error
    assert "events ok" in rig.traced()


# ---------------------------------------------------------------------------------------------------------
# processes


def test_fail_render_inside_a_stdout_handler_stops_the_process_and_fails_the_task(rig: Rig) -> None:
    pid_file = rig.tmp / "pid"
    script = rig.script("fail.py", f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        print("PROGRESS 10", flush=True)
        print("ERROR frame 7 could not be written", flush=True)
        time.sleep(60)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="run", Script=script)
    started = time.monotonic()
    progress: List[float] = []
    _, outcome = rig.run(progress=progress)

    assert outcome.state == "failed"
    assert outcome.error == "frame 7 could not be written"
    assert time.monotonic() - started < 10
    assert progress == [10.0]
    assert not pid_alive(int(pid_file.read_text()))
    assert "0: STDOUT: ERROR frame 7 could not be written" in outcome.log


def test_cancel_kills_the_managed_process_tree(rig: Rig) -> None:
    pid_file = rig.tmp / "pids"
    script = rig.script("tree.py", f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        print("PROGRESS 5", flush=True)
        time.sleep(60)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="run", Script=script)
    cancel = threading.Event()

    def cancel_once_started() -> None:
        wait_for(lambda: pid_file.is_file() and " " in pid_file.read_text())
        cancel.set()

    canceller = threading.Thread(target=cancel_once_started)
    canceller.start()
    started = time.monotonic()
    _, outcome = rig.run(cancel=cancel)
    canceller.join()

    assert outcome.state == "canceled"
    assert outcome.error == ""
    assert time.monotonic() - started < 15
    assert all(not pid_alive(int(pid)) for pid in pid_file.read_text().split())
    assert rig.traced()[-2:] == ["IsCanceled True", "RenderCanceled"]
    assert "Deadline canceled the task: killing the process tree of Script" in outcome.log


def test_monitored_process_handlers_run_when_the_plugin_flushes(rig: Rig) -> None:
    startup = rig.tmp / "startup"
    startup.mkdir()
    script = rig.script("server.py", """
        import os, time
        print("CWD " + os.getcwd(), flush=True)
        names = ("FROM_PLUGIN", "FROM_PROCESS", "FROM_JOB")
        print("ENV " + " ".join(os.environ.get(k, "-") for k in names), flush=True)
        for i in range(3):
            print(f"TICK {i}", flush=True)
        print("DONE", flush=True)
        time.sleep(60)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="monitored", Script=script, Startup=str(startup), WaitBeforeFlush="0.5",
               job_info={"EnvironmentKeyValue0": "FROM_JOB=j"})
    _, outcome = rig.run()
    rig.host.leave_job()

    assert outcome.state == "completed", outcome.error
    assert rig.traced() == ["before flush ticks=0 running=True", "after flush ticks=3 done=True",
                            f"CWD {startup}", "ENV p m j", "running True", "EndJob running=False"]
    assert rig.host.cleanup_warnings == []


def test_shutdown_kills_the_whole_monitored_tree(rig: Rig) -> None:
    pid_file = rig.tmp / "pids"
    script = rig.script("daemon.py", f"""
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        open({str(pid_file)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        print("DONE", flush=True)
        time.sleep(60)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="monitored", Script=script)
    _, outcome = rig.run()
    pids = [int(pid) for pid in pid_file.read_text().split()]
    assert all(pid_alive(pid) for pid in pids)
    rig.host.leave_job()

    assert outcome.state == "completed", outcome.error
    assert rig.traced()[-1] == "EndJob running=False"
    assert not any(pid_alive(pid) for pid in pids)


def test_a_monitored_process_still_running_at_unload_is_killed_with_a_warning(rig: Rig) -> None:
    pid_file = rig.tmp / "pids"
    script = rig.script("daemon.py", f"""
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        open({str(pid_file)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        print("DONE", flush=True)
        time.sleep(60)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="monitored", Script=script, ShutdownInEndJob="False")
    rig.run()
    rig.host.leave_job()

    assert rig.traced()[-1] == "EndJob running=True"
    assert not any(pid_alive(int(pid)) for pid in pid_file.read_text().split())
    assert any('monitored managed process "server" still ran when the plugin was unloaded' in line
               for line in rig.lines)


def test_a_monitored_process_that_exits_calls_the_exit_callback(rig: Rig) -> None:
    script = rig.script("short.py", """
        print("TICK 1", flush=True)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="until-exit", Script=script)
    _, outcome = rig.run()
    assert outcome.state == "completed", outcome.error
    assert rig.traced()[1:] == ["MonitoredManagedProcessExit server", "after flush ticks=1 done=False",
                                "running False"]


def test_verify_fails_the_task_once_the_monitored_process_exited(rig: Rig) -> None:
    probe = """
class Quick(ManagedProcess):
    def __init__(self):
        super().__init__()
        self.RenderExecutableCallback += lambda: sys.executable
        self.RenderArgumentCallback += lambda: "-c pass"
self.StartMonitoredManagedProcess("quick", Quick())
self.SetMonitoredManagedProcessExitCheckingFlag("quick", False)
trace(self, "exited " + str(self.WaitForMonitoredManagedProcessToExit("quick", 10000)))
trace(self, "exit code " + str(self.GetMonitoredManagedProcessExitCode("quick")))
self.VerifyMonitoredManagedProcess("quick")
"""
    rig.plugin("Sample", ADVANCED)
    rig.submit("Sample", Probe=probe)
    _, outcome = rig.run()
    assert outcome.state == "failed"
    assert outcome.error == 'Monitored managed process "quick" has exited or been terminated (exit code 0).'
    assert rig.traced()[-4:] == ["exited True", "exit code 0", "EndJob", "Cleanup"]


def test_cancel_kills_at_once_without_a_grace_period(rig: Rig) -> None:
    """.NET's Process.Kill: no SIGTERM, so nothing the process does on SIGTERM happens (module docstring)."""
    pid_file, termed = rig.tmp / "pid", rig.tmp / "termed"
    script = rig.script("stubborn.py", f"""
        import os, signal, sys, time
        def on_term(signum, frame):
            open({str(termed)!r}, "w").write("SIGTERM")
        signal.signal(signal.SIGTERM, on_term)
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        print("PROGRESS 5", flush=True)
        time.sleep(60)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="run", Script=script)
    cancel = threading.Event()
    canceller = threading.Thread(target=lambda: (wait_for(pid_file.is_file), cancel.set()))
    canceller.start()
    started = time.monotonic()
    _, outcome = rig.run(cancel=cancel)
    canceller.join()

    assert outcome.state == "canceled"
    assert time.monotonic() - started < 10
    assert not pid_alive(int(pid_file.read_text()))
    assert not termed.exists()  # it never saw a SIGTERM


@pytest.mark.parametrize("process_tree", [True, False])
def test_use_process_tree_decides_whether_children_die_with_a_killed_process(rig: Rig, process_tree: bool) -> None:
    """Stock plugins set UseProcessTree so that the children die too (module docstring); without it they
    outlive the process Deadline kills, and keep what they hold (a GPU, a port)."""
    pid_file = rig.tmp / "pids"
    script = rig.script("parent.py", f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open({str(pid_file)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="run", Script=script, ProcessTree=str(process_tree))
    cancel = threading.Event()
    canceller = threading.Thread(target=lambda: (wait_for(lambda: " " in (pid_file.read_text()
                                                                           if pid_file.is_file() else "")),
                                                 cancel.set()))
    canceller.start()
    _, outcome = rig.run(cancel=cancel)
    canceller.join()
    parent, child = (int(pid) for pid in pid_file.read_text().split())
    try:
        assert outcome.state == "canceled"
        assert f"({'UseProcessTree ' + str(process_tree)}, TerminateOnExit True)" in outcome.log
        assert not pid_alive(parent)
        assert pid_alive(child) is not process_tree
        if not process_tree:
            assert f"processes [{child}] it started outlive it (UseProcessTree is not set)" in outcome.log
    finally:
        if pid_alive(child):
            os.kill(child, signal.SIGKILL)


def test_stdout_and_stderr_are_two_streams_in_no_order_both_seen_by_the_handlers(rig: Rig) -> None:
    """A stderr line written before a stdout line may be handled after it (module docstring)."""
    script = rig.script("streams.py", """
        import sys
        sys.stderr.write("ENV written first, on stderr\\n")
        sys.stderr.flush()
        print("ENV written second, on stdout", flush=True)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="run", Script=script)
    _, outcome = rig.run()

    assert outcome.state == "completed", outcome.error
    assert rig.traced()[:3] == ["exit code 0", "ENV written second, on stdout", "ENV written first, on stderr"]
    assert "0: STDOUT: ENV written first, on stderr" in outcome.log


QUICK = """
class Quick(ManagedProcess):
    def __init__(self):
        super().__init__()
        self.RenderExecutableCallback += lambda: sys.executable
        self.RenderArgumentCallback += lambda: "-c pass"
"""


def test_a_monitored_exit_without_an_exit_handler_fails_the_task(rig: Rig) -> None:
    probe = QUICK + """
self.StartMonitoredManagedProcess("quick", Quick())
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    self.FlushMonitoredManagedProcessStdout("quick")
    time.sleep(0.02)
trace(self, "never noticed")
"""
    rig.plugin("Sample", ADVANCED)
    rig.submit("Sample", Probe=probe)
    _, outcome = rig.run()
    assert outcome.state == "failed"
    assert outcome.error == 'Monitored managed process "quick" has exited or been terminated.'
    assert "never noticed" not in rig.traced()


def test_a_monitored_exit_is_noticed_while_run_managed_process_waits(rig: Rig) -> None:
    """A plugin that waits in RunManagedProcess (a chunk) while its monitored server dies hears of it there:
    without a handler the task fails and the running process is killed."""
    pid_file = rig.tmp / "pid"
    script = rig.script("long.py", f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
    """)
    probe = QUICK + f"""
class Long(ManagedProcess):
    def __init__(self):
        super().__init__()
        self.InitializeProcessCallback += self.Init
        self.RenderExecutableCallback += lambda: sys.executable
        self.RenderArgumentCallback += lambda: {script!r}
    def Init(self):
        self.UseProcessTree = True
self.StartMonitoredManagedProcess("quick", Quick())
self.RunManagedProcess(Long())
trace(self, "the run ended")
"""
    rig.plugin("Sample", ADVANCED)
    rig.submit("Sample", Probe=probe)
    started = time.monotonic()
    _, outcome = rig.run()
    assert outcome.state == "failed"
    assert outcome.error == 'Monitored managed process "quick" has exited or been terminated.'
    assert time.monotonic() - started < 10
    assert not pid_alive(int(pid_file.read_text()))
    assert "the run ended" not in rig.traced()


def test_the_worker_environment_has_deadlines_library_folder_and_a_proxy_loopback_goes_through(
        tmp_path: Path) -> None:
    """What processes on a Worker inherit (module docstring): Deadline's folder leads LD_LIBRARY_PATH, and
    behind the studio proxy a loopback call that does not bypass it is refused; ProxyHandler({}) bypasses it."""
    import http.server

    from tests.doubles.deadline_runtime.worker_environment import (
        STUDIO_LIBRARY_FOLDER,
        ClosedPort,
        deadline_library_folder,
        worker_environment,
    )

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    probe = textwrap.dedent(f"""
        import os, sys, urllib.request
        import websocket._url
        url = "http://127.0.0.1:{server.server_port}/"
        print(os.environ["LD_LIBRARY_PATH"])
        print(websocket._url.get_proxy_info("127.0.0.1", False)[:2])
        try:
            urllib.request.urlopen(url, timeout=5)
            print("through the proxy: answered")
        except OSError as exc:
            print("through the proxy:", exc)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
        print("bypassing it:", opener.open(url, timeout=5).status)
    """)
    try:
        with ClosedPort() as proxy:
            env = worker_environment({k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
                                     tmp_path / "machine", proxy.port)
            done = subprocess.run([PYTHON, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
    finally:
        server.shutdown()
    library_path, websocket_proxy, urllib_line, bypass_line = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert library_path.split(os.pathsep)[:2] == [str(deadline_library_folder(tmp_path / "machine")),
                                                  STUDIO_LIBRARY_FOLDER]
    assert "Thinkbox/Deadline10" in library_path.split(os.pathsep)[0]
    assert websocket_proxy == f"('127.0.0.1', {proxy.port})"
    assert urllib_line == "through the proxy: <urlopen error [Errno 111] Connection refused>"
    assert bypass_line == "bypassing it: 200"


def test_processes_a_run_process_leaves_in_its_tree_are_killed(rig: Rig) -> None:
    pid_file = rig.tmp / "pids"
    script = rig.script("leaves.py", f"""
        import subprocess
        child = subprocess.Popen(["sleep", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open({str(pid_file)!r}, "w").write(str(child.pid))
        print("PROGRESS 100", flush=True)
    """)
    rig.plugin("Script", SCRIPT_PROCESS)
    rig.submit("Script", Mode="run", Script=script)
    _, outcome = rig.run()
    assert outcome.state == "completed", outcome.error
    assert not pid_alive(int(pid_file.read_text()))
    assert "but left processes" in outcome.log


def test_abort_render_from_another_thread_fails_the_task(rig: Rig) -> None:
    probe = """
import threading
args = ("aborted from a watcher thread", ManagedProcess.AbortLevel.Fatal)
threading.Thread(target=self.AbortRender, args=args).start()
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    self.IsCanceled()
    time.sleep(0.01)
"""
    rig.plugin("Sample", ADVANCED)
    rig.submit("Sample", Probe=probe)
    started = time.monotonic()
    _, outcome = rig.run()
    assert outcome.state == "failed"
    assert outcome.error == "aborted from a watcher thread"
    assert time.monotonic() - started < 5


def test_run_process_returns_the_exit_code(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED)
    script = rig.script("exit.py", "import sys\nprint('hello from RunProcess')\nsys.exit(4)\n")
    probe = f"trace(self, 'code ' + str(self.RunProcess({PYTHON!r}, {script!r}, '', -1)))"
    rig.submit("Sample", Probe=probe)
    _, outcome = rig.run()
    assert outcome.state == "completed", outcome.error
    assert rig.traced()[-1] == "code 4"
    assert "0: STDOUT: hello from RunProcess" in outcome.log


@pytest.mark.parametrize(("text", "expected"), [
    ('main.py --listen 127.0.0.1', ["main.py", "--listen", "127.0.0.1"]),
    ('"C:\\Program Files\\x.exe" -a', ["C:\\Program Files\\x.exe", "-a"]),
    ('"say \\"hi\\"" tail', ['say "hi"', "tail"]),
    ("'single quotes' stay", ["'single", "quotes'", "stay"]),
    ('a\\\\"b c"', ['a\\b c']),
    ('  spaced   out  ', ["spaced", "out"]),
    ('""', [""]),
])
def test_argument_strings_split_like_dotnet(text: str, expected: List[str]) -> None:
    assert split_arguments(text) == expected


# ---------------------------------------------------------------------------------------------------------
# repository: configuration, path mapping, job object, affinity


PARAM = f"""
    [About]
    Type=label
    Default=Sample plugin

    [Executable]
    Type=multilinemultifilename
    Default=/nonexistent/python;{PYTHON}

    [Retries]
    Type=integer
    Minimum=0
    Default=3

    [Enabled]
    Type=boolean
    Default=False

    [NoDefault]
    Type=string

    [Blank]
    Type=string
    Default=
"""

CONFIG_PROBE = """
for call in ("self.GetConfigEntry('Retries')", "self.GetIntegerConfigEntry('Retries')",
             "self.GetBooleanConfigEntryWithDefault('Enabled', True)", "self.GetConfigEntry('Blank')",
             "self.GetConfigEntryWithDefault('NoDefault', 'fallback')",
             "self.GetFloatConfigEntryWithDefault('Unknown', 2)",
             "FileUtils.SearchFileList(self.GetConfigEntry('Executable'))", "self.GetConfigEntry('NoDefault')",
             "self.GetConfigEntry('Unknown')", "self.GetIntegerConfigEntry('Enabled')"):
    try:
        trace(self, call + " = " + repr(eval(call)))
    except Exception as exc:
        trace(self, call + " raised " + type(exc).__name__ + ": " + str(exc))
"""


def test_config_entries_come_from_settings_then_param_defaults(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED, param=PARAM)
    rig.settings("plugins/Sample.json", {"Retries": 5})
    rig.submit("Sample", Probe=CONFIG_PROBE)
    _, outcome = rig.run()
    assert outcome.state == "completed", outcome.error
    assert rig.traced()[3:] == [
        "self.GetConfigEntry('Retries') = '5'",
        "self.GetIntegerConfigEntry('Retries') = 5",
        "self.GetBooleanConfigEntryWithDefault('Enabled', True) = False",
        "self.GetConfigEntry('Blank') = ''",
        "self.GetConfigEntryWithDefault('NoDefault', 'fallback') = 'fallback'",
        "self.GetFloatConfigEntryWithDefault('Unknown', 2) = 2.0",
        f"FileUtils.SearchFileList(self.GetConfigEntry('Executable')) = {PYTHON!r}",
        "self.GetConfigEntry('NoDefault') raised DeadlineException: the plugin configuration has no entry 'NoDefault' "
        "(Configure Plugins, or a Default= in the .param file); use GetConfigEntryWithDefault for an optional one",
        "self.GetConfigEntry('Unknown') raised DeadlineException: the plugin configuration has no entry 'Unknown' "
        "(Configure Plugins, or a Default= in the .param file); use GetConfigEntryWithDefault for an optional one",
        "self.GetIntegerConfigEntry('Enabled') raised DeadlineException: config entry Enabled is 'False', which is not "
        "an integer",
    ]


def test_a_malformed_param_file_fails_the_load(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED, param="[Retries]\nDefault=3\n")
    rig.submit("Sample")
    _, outcome = rig.run()
    assert outcome.state == "failed"
    assert outcome.error.endswith("Sample.param: [Retries] has no Type=")


def test_path_mapping_applies_the_repository_rules(rig: Rig) -> None:
    from Deadline.Scripting import RepositoryUtils

    assert RepositoryUtils.CheckPathMapping("/Volumes/projects/a.exr") == "/Volumes/projects/a.exr"
    rig.settings("pathmapping.json", [
        {"Path": "/Volumes/projects/", "LinuxPath": "/mnt/projects/", "WindowsPath": "P:\\"},
        {"Path": "\\\\server\\share\\", "LinuxPath": "/mnt/share/"},
        {"Path": "/Shows/", "LinuxPath": "/mnt/shows/", "CaseSensitive": False},
        {"Path": "/only/windows/", "WindowsPath": "W:\\"},
    ])
    assert RepositoryUtils.CheckPathMapping("/Volumes/projects/sh010/a.exr") == "/mnt/projects/sh010/a.exr"
    assert RepositoryUtils.CheckPathMapping("\\\\server\\share\\sh010\\a.exr") == "/mnt/share/sh010/a.exr"
    assert RepositoryUtils.CheckPathMapping("/shows/x") == "/mnt/shows/x"
    assert RepositoryUtils.CheckPathMapping("/only/windows/x") == "/only/windows/x"
    assert RepositoryUtils.CheckPathMapping("/elsewhere/x") == "/elsewhere/x"
    assert RepositoryUtils.GetPathMappings()[0] == ["/Volumes/projects/", "/mnt/projects/"]
    rig.settings("pathmapping.json", {"/a/": "/b/"})
    assert RepositoryUtils.CheckPathMapping("/a/file") == "/b/file"

    rig.plugin("Sample", ADVANCED)
    rig.submit("Sample", Probe="trace(self, RepositoryUtils.CheckPathMapping('/a/shot/b.exr'))")
    _, outcome = rig.run()
    assert outcome.state == "completed", outcome.error
    assert rig.traced()[-1] == "/b/shot/b.exr"


def test_the_job_object_is_built_from_the_job(rig: Rig) -> None:
    probe = """
job = self.GetJob()
for name in ("JobName", "JobPlugin", "JobStatus", "JobFramesList", "JobOutputDirectories", "JobOutputFileNames",
             "JobExtraInfo0", "JobPool", "JobPriority", "EventOptIns"):
    trace(self, name + " " + repr(getattr(job, name)))
trace(self, "PluginInfo " + job.GetJobPluginInfoKeyValue("Quality") + "|" + job.GetJobPluginInfoKeyValue("Nope"))
trace(self, "ExtraInfo " + job.GetJobExtraInfoKeyValueWithDefault("shot", "?") + "|"
      + job.GetJobExtraInfoKeyValueWithDefault("nope", "?"))
trace(self, "task " + repr(self.GetCurrentTask().TaskFrameList))
fresh = RepositoryUtils.GetJob(job.JobId, True)
trace(self, "tasks " + repr([t.TaskFrameList for t in RepositoryUtils.GetJobTasks(fresh, True)]))
"""
    rig.plugin("Sample", ADVANCED)
    rig.submit("Sample", "1-9x2", 2, Probe=probe, Quality="high",
               job_info={"OutputDirectory0": "/out", "OutputFilename0": "a.####.exr", "ExtraInfo0": "sh010",
                         "ExtraInfoKeyValue0": "shot=sh010", "EventOptIns": "Relink", "Priority": 70})
    _, outcome = rig.run()
    assert outcome.state == "completed", outcome.error
    assert rig.traced()[3:] == [
        "JobName 'Sample job'", "JobPlugin 'Sample'", "JobStatus 'Active'", "JobFramesList [1, 3, 5, 7, 9]",
        "JobOutputDirectories ['/out']", "JobOutputFileNames ['a.####.exr']", "JobExtraInfo0 'sh010'",
        "JobPool 'none'", "JobPriority 70", "EventOptIns ['Relink']", "PluginInfo high|", "ExtraInfo sh010|?",
        "task [1, 3]", "tasks [[1, 3], [5, 7], [9]]",
    ]


def test_update_job_output_file_names_reaches_the_repository(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED)
    job_id = rig.submit("Sample", Probe="RepositoryUtils.UpdateJobOutputFileNames(self.GetJob(), ['b.####.exr'])",
                        job_info={"OutputDirectory0": "/out", "OutputFilename0": "a.####.exr"})
    _, outcome = rig.run()
    assert outcome.state == "completed", outcome.error
    assert rig.store.job_json(job_id)["OutFile"] == ["b.####.exr"]


def test_gpu_affinity_comes_from_the_worker(tmp_path: Path) -> None:
    sys.path.insert(0, str(SITE_DIR))
    rig = Rig(tmp_path, gpu_affinity=(2, 3))
    try:
        rig.plugin("Sample", ADVANCED)
        rig.submit("Sample", Probe="trace(self, repr((self.OverrideGpuAffinity(), self.GpuAffinity(), "
                                   "self.GetThreadNumber(), self.GetSlaveName(), self.OverrideCpuAffinity())))")
        _, outcome = rig.run()
    finally:
        rig.host.close()
        sys.path.remove(str(SITE_DIR))
    assert outcome.state == "completed", outcome.error
    assert rig.traced()[-3:] == [f"(True, [2, 3], 0, {WORKER!r}, False)", "EndJob", "Cleanup"]


def test_without_an_affinity_override_the_gpu_affinity_is_empty(rig: Rig) -> None:
    rig.plugin("Sample", ADVANCED)
    rig.submit("Sample", Probe="trace(self, repr((self.OverrideGpuAffinity(), self.GpuAffinity())))")
    rig.run()
    assert rig.traced()[-1] == "(False, [])"


def test_jobs_data_and_temp_directories(rig: Rig) -> None:
    aux = rig.tmp / "scene.json"
    aux.write_text("{}", encoding="utf-8")
    rig.plugin("Sample", ADVANCED)
    probe = ("trace(self, self.GetDataFilename())\ntrace(self, self.CreateTempDirectory('scratch'))\n"
             "trace(self, self.GetPluginDirectory())")
    job_id = rig.store.submit_job({"JobInfo": {"Plugin": "Sample", "Frames": "1"},
                                   "PluginInfo": {"Trace": str(rig.trace_path), "Probe": probe},
                                   "AuxFiles": [str(aux)]})["_id"]
    _, outcome = rig.run()
    home = rig.tmp / "home"
    assert outcome.state == "completed", outcome.error
    assert rig.traced()[-3:] == [str(home / "jobsData" / job_id / "scene.json"),
                                 str(home / "temp" / job_id / "scratch"), str(home / "plugins" / job_id)]
    assert (home / "jobsData" / job_id / "scene.json").is_file()
    rig.host.leave_job()
    assert not (home / "jobsData" / job_id).exists() and not (home / "temp" / job_id).exists()


# ---------------------------------------------------------------------------------------------------------
# event plugins


EVENT = '''
from Deadline.Events import DeadlineEventListener
from Deadline.Scripting import RepositoryUtils


def GetDeadlineEventListener():
    return Listener()


def CleanupDeadlineEventListener(listener):
    listener.Cleanup()


class Listener(DeadlineEventListener):
    def __init__(self):
        super().__init__()
        self.OnJobFinishedCallback += self.OnJobFinished

    def Cleanup(self):
        del self.OnJobFinishedCallback

    def OnJobFinished(self, job):
        job = RepositoryUtils.GetJob(job.JobId, True)
        greeting = self.GetConfigEntryWithDefault("Greeting", "-")
        self.LogInfo(f"{job.JobName} finished ({job.JobStatus}) greeting={greeting}")
'''


def _event(rig: Rig, name: str, param_state: Optional[str]) -> None:
    folder = rig.repository / "custom" / "events" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(EVENT), encoding="utf-8")
    if param_state is not None:
        (folder / f"{name}.param").write_text(
            f"[State]\nType=Enum\nItems=Global Enabled;Opt-In;Disabled\nDefault={param_state}\n\n"
            "[Greeting]\nType=string\nDefault=hello\n", encoding="utf-8")


def test_event_plugins_run_by_state_and_opt_in(rig: Rig) -> None:
    _event(rig, "Everyone", "Global Enabled")
    _event(rig, "OptedIn", "Disabled")
    rig.settings("events/OptedIn.json", {"State": "Opt-In", "Greeting": "configured"})
    _event(rig, "Off", "Opt-In")
    rig.settings("events/Off.json", {"State": "Disabled"})
    _event(rig, "NoParam", None)
    lines: List[str] = []
    events = EventHost(rig.repository, rig.backend, log_sink=lines.append)
    try:
        opted = rig.store.submit_job({"JobInfo": {"Plugin": "X", "Name": "opted", "EventOptIns": "OptedIn,Off"},
                                      "PluginInfo": {}})["_id"]
        plain = rig.store.submit_job({"JobInfo": {"Plugin": "X", "Name": "plain"}, "PluginInfo": {}})["_id"]
        quiet = rig.store.submit_job({"JobInfo": {"Plugin": "X", "Name": "quiet", "SuppressEvents": True,
                                                  "EventOptIns": "OptedIn"}, "PluginInfo": {}})["_id"]
        for job_id in (opted, plain, quiet):
            rig.store.job_command({"Command": "complete", "JobID": job_id})
        assert events.fire("OnJobFinished", opted) == ["Everyone", "OptedIn"]
        assert events.fire("OnJobFinished", plain) == ["Everyone"]
        assert events.fire("OnJobFinished", quiet) == []
        assert events.fire("OnJobFailed", opted) == ["Everyone", "OptedIn"]
    finally:
        events.close()
    assert "Event Plugin OptedIn: INFO: opted finished (Completed) greeting=configured" in lines
    assert "Event Plugin Everyone: INFO: plain finished (Completed) greeting=hello" in lines
    assert events.cleanup_warnings == []
    assert all(run.error == "" for run in events.runs)


def test_a_failing_event_plugin_is_logged_and_the_others_still_run(rig: Rig) -> None:
    _event(rig, "Broken", "Global Enabled")
    broken = rig.repository / "custom" / "events" / "Broken" / "Broken.py"
    broken.write_text(broken.read_text().replace("job = RepositoryUtils.GetJob(job.JobId, True)",
                                                 "raise RuntimeError('relink inbox unreachable')"))
    _event(rig, "Works", "Global Enabled")
    lines: List[str] = []
    events = EventHost(rig.repository, rig.backend, log_sink=lines.append)
    try:
        job_id = rig.store.submit_job({"JobInfo": {"Plugin": "X", "Name": "j"}, "PluginInfo": {}})["_id"]
        assert events.fire("OnJobFinished", job_id) == ["Broken", "Works"]
    finally:
        events.close()
    assert [run.error for run in events.runs] == ["RuntimeError: relink inbox unreachable", ""]
    assert "Event Plugin Broken: WARNING: OnJobFinished failed: RuntimeError: relink inbox unreachable" in lines
