"""The classes a Deadline 10 plugin imports, as the double offers them (re-exported by the ``site`` modules).

Every method checks its call shape the way pythonnet's overload resolution would: a ``str`` parameter takes a
``str`` (not an int), an ``int`` takes an int (not a bool), ``bool`` a bool; otherwise TypeError. The work
is done by the session the host attaches to each plugin (:class:`tests.doubles.deadline_runtime.runtime.
PluginSession`); a plugin used outside a host (or from its ``__init__``) raises RuntimeError.
"""

from __future__ import annotations

import enum
import math
import os
import platform
import re
import time
from typing import Any, List, Optional

from .events import EventSlot, Setting, StrictMeta, StrictObject, init_deadline_object
from .jobs import Job, Task, tasks_of
from .params import ValueFormatError, parse_boolean, parse_float, parse_integer
from .repository import current_connection

# ---------------------------------------------------------------------------------------------------------
# exceptions


class DeadlineException(Exception):
    """Stands for the .NET exceptions Deadline throws into plugin code (an unknown key, a missing executable,
    a monitored process that exited...). The message is what the task's error report shows."""


class FailRenderError(DeadlineException):
    """Raised by ``FailRender`` (and ``AbortRender``): the task fails with this message as its error report."""


class TaskCanceledError(DeadlineException):
    """Raised out of ``RunManagedProcess`` / ``RunProcess`` when Deadline cancels the task (the process tree
    was killed first). The Worker reports nothing for a canceled task: the task was taken from it."""


class PluginContractError(DeadlineException):
    """The plugin breaks Deadline's contract (no GetDeadlinePlugin, an incomplete Advanced lifecycle...)."""


# ---------------------------------------------------------------------------------------------------------
# argument checks


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__} ({value!r})")
    return value


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an integer, not {type(value).__name__} ({value!r})")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, not {type(value).__name__} ({value!r})")
    return float(value)


def _boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a boolean, not {type(value).__name__} ({value!r})")
    return value


def _session(obj: Any) -> Any:
    session = obj.__dict__.get("_dl_session")
    if session is None:
        raise RuntimeError(f"{type(obj).__name__} is not running in a Worker: Deadline attaches a plugin after "
                           "GetDeadlinePlugin() returns, so its API cannot be used from __init__ or outside a host")
    return session


def _parsed(text: str, kind: str, what: str) -> Any:
    try:
        if kind == "bool":
            return parse_boolean(text, what)
        if kind == "int":
            return parse_integer(text, what)
        return parse_float(text, what)
    except ValueFormatError as exc:
        raise DeadlineException(str(exc)) from None


# ---------------------------------------------------------------------------------------------------------
# plugin types and stdout handlers


class PluginType(enum.Enum):
    """``Deadline.Plugins.PluginType``."""

    Simple = 0
    Advanced = 1


class _AbortLevel(enum.Enum):
    Fatal = 0


class StdoutHandler(StrictObject):
    """What ``AddStdoutHandlerCallback(regex)`` returns: ``handler.HandleCallback += fn``."""

    _dl_kind = "StdoutHandler"
    HandleCallback = EventSlot()

    def __init__(self, regex: str) -> None:
        init_deadline_object(self)
        try:
            compiled = re.compile(_text(regex, "the stdout handler's regex"))
        except re.error as exc:
            raise DeadlineException(f"the stdout handler regex {regex!r} is not valid: {exc}") from None
        self.__dict__["_dl_regex"] = compiled

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "HandleCallback":
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"Deadline's StdoutHandler has no attribute {name!r} to set")

    def __repr__(self) -> str:
        return f"<StdoutHandler {self.__dict__['_dl_regex'].pattern!r}>"


class _StdoutHandling:
    """Stdout handlers, shared by DeadlinePlugin (Simple plugins' render process) and ManagedProcess.

    A handler fires when its regex matches the WHOLE line (Python ``re.fullmatch``: the double's strict
    reading; Deadline's stock plugins write ``.*`` around their patterns). ``GetRegexMatch(0)`` is the whole
    line, ``GetRegexMatch(n)`` group n ("" when the group did not take part); it only answers inside a
    handler of the same object."""

    def AddStdoutHandlerCallback(self, regex: str) -> StdoutHandler:  # noqa: N802 (Deadline's names)
        handler = StdoutHandler(regex)
        self.__dict__["_dl_handlers"].append(handler)
        return handler

    @property
    def StdoutHandlers(self) -> List[StdoutHandler]:  # noqa: N802
        return list(self.__dict__["_dl_handlers"])

    def GetRegexMatch(self, index: int) -> str:  # noqa: N802
        _integer(index, "GetRegexMatch's index")
        match = self.__dict__.get("_dl_match")
        if match is None:
            raise DeadlineException(f"{type(self).__name__}.GetRegexMatch({index}) was called outside one of its "
                                    "own stdout handlers: there is no match to read")
        if not 0 <= index <= (match.re.groups or 0):
            raise IndexError(f"GetRegexMatch({index}): the regex {match.re.pattern!r} has {match.re.groups} "
                             "group(s)")
        return match.group(index) or ""

    def SuppressThisLine(self) -> None:  # noqa: N802
        if self.__dict__.get("_dl_match") is None:
            raise DeadlineException("SuppressThisLine() only works inside a stdout handler")
        self.__dict__["_dl_suppress"] = True


def _init_stdout(obj: Any) -> None:
    obj.__dict__["_dl_handlers"] = []
    obj.__dict__["_dl_match"] = None
    obj.__dict__["_dl_suppress"] = False


class _ConfigEntries:
    """``GetConfigEntry*`` (plugin configuration: settings, else the .param Default), shared with events."""

    def _dl_config(self, key: str) -> Optional[str]:
        return _session(self).config_value(key)

    def GetConfigEntry(self, key: str) -> str:  # noqa: N802
        value = self._dl_config(_text(key, "the config key"))
        if value is None:
            raise DeadlineException(f"the plugin configuration has no entry {key!r} (Configure Plugins, or a "
                                    "Default= in the .param file); use GetConfigEntryWithDefault for an optional one")
        return value

    def GetConfigEntryWithDefault(self, key: str, default: str) -> str:  # noqa: N802
        value = self._dl_config(_text(key, "the config key"))
        return _text(default, "the default") if value is None else value

    def GetBooleanConfigEntry(self, key: str) -> bool:  # noqa: N802
        return _parsed(self.GetConfigEntry(key), "bool", f"config entry {key}")

    def GetBooleanConfigEntryWithDefault(self, key: str, default: bool) -> bool:  # noqa: N802
        _boolean(default, "the default")
        value = self._dl_config(_text(key, "the config key"))
        return default if value is None else _parsed(value, "bool", f"config entry {key}")

    def GetIntegerConfigEntry(self, key: str) -> int:  # noqa: N802
        return _parsed(self.GetConfigEntry(key), "int", f"config entry {key}")

    def GetIntegerConfigEntryWithDefault(self, key: str, default: int) -> int:  # noqa: N802
        _integer(default, "the default")
        value = self._dl_config(_text(key, "the config key"))
        return default if value is None else _parsed(value, "int", f"config entry {key}")

    def GetFloatConfigEntry(self, key: str) -> float:  # noqa: N802
        return _parsed(self.GetConfigEntry(key), "float", f"config entry {key}")

    def GetFloatConfigEntryWithDefault(self, key: str, default: float) -> float:  # noqa: N802
        default = _number(default, "the default")
        value = self._dl_config(_text(key, "the config key"))
        return default if value is None else _parsed(value, "float", f"config entry {key}")


# ---------------------------------------------------------------------------------------------------------
# FranticX.Processes.ManagedProcess


class ManagedProcess(_StdoutHandling, StrictObject):
    """A process a plugin describes with callbacks and hands to ``RunManagedProcess`` or
    ``StartMonitoredManagedProcess``. Order when it is started: InitializeProcess, PreRenderTasks,
    RenderExecutable (required: an existing file), RenderArgument (one string, split like .NET does),
    StartupDirectory (an existing folder, or blank: the Worker's current folder); after it exits (run
    processes only): ``ExitCode`` is set, CheckExitCode(exit_code) (without a handler, a non-zero code fails
    the task), PostRenderTasks. Its own stdout handlers (not the plugin's) see its output, when
    ``StdoutHandling`` is True."""

    _dl_kind = "ManagedProcess"
    AbortLevel = _AbortLevel

    InitializeProcessCallback = EventSlot()
    RenderExecutableCallback = EventSlot()
    RenderArgumentCallback = EventSlot()
    PreRenderTasksCallback = EventSlot()
    PostRenderTasksCallback = EventSlot()
    StartupDirectoryCallback = EventSlot()
    CheckExitCodeCallback = EventSlot()

    StdoutHandling = Setting((bool,), False)
    PopupHandling = Setting((bool,), False)
    UseProcessTree = Setting((bool,), False)
    HideDosWindow = Setting((bool,), False)
    HandleQtPopups = Setting((bool,), False)
    HandleWindows10Popups = Setting((bool,), False)
    TerminateOnExit = Setting((bool,), False)
    ProcessPriority = Setting((object,), None)
    ExitCode = Setting((int,), -1, allow_bool=False)

    def __init__(self) -> None:
        init_deadline_object(self)
        _init_stdout(self)
        self.__dict__["_dl_env"] = {}

    def SetEnvironmentVariable(self, key: str, value: str) -> None:  # noqa: N802
        self.__dict__["_dl_env"][_text(key, "the variable name")] = _text(value, "the variable value")


# ---------------------------------------------------------------------------------------------------------
# Deadline.Plugins.DeadlinePlugin


class DeadlinePlugin(_StdoutHandling, _ConfigEntries, StrictObject):
    """Base class of application plugins (see the package docstring for the lifecycle)."""

    _dl_kind = "DeadlinePlugin"

    InitializeProcessCallback = EventSlot()
    StartJobCallback = EventSlot()
    RenderTasksCallback = EventSlot()
    EndJobCallback = EventSlot()
    IsSingleFramesOnlyCallback = EventSlot()
    RenderCanceledCallback = EventSlot()
    MonitoredManagedProcessExitCallback = EventSlot()
    RenderExecutableCallback = EventSlot()
    RenderArgumentCallback = EventSlot()
    PreRenderTasksCallback = EventSlot()
    PostRenderTasksCallback = EventSlot()
    StartupDirectoryCallback = EventSlot()
    CheckExitCodeCallback = EventSlot()

    SingleFramesOnly = Setting((bool,), False)
    StdoutHandling = Setting((bool,), False)
    PopupHandling = Setting((bool,), False)
    UseProcessTree = Setting((bool,), False)
    TerminateOnExit = Setting((bool,), False)
    HideDosWindow = Setting((bool,), False)
    HandleQtPopups = Setting((bool,), False)
    HandleWindows10Popups = Setting((bool,), False)
    ProcessPriority = Setting((object,), None)

    def __init__(self) -> None:
        init_deadline_object(self)
        _init_stdout(self)
        self.__dict__["_dl_plugin_type"] = PluginType.Simple
        self.__dict__["_dl_session"] = None

    @property
    def PluginType(self) -> PluginType:  # noqa: N802
        return self.__dict__["_dl_plugin_type"]

    @PluginType.setter
    def PluginType(self, value: PluginType) -> None:  # noqa: N802
        if not isinstance(value, PluginType):
            raise TypeError(f"PluginType must be PluginType.Simple or PluginType.Advanced, not {value!r}")
        session = self.__dict__.get("_dl_session")
        if session is not None and session.initialized:
            raise RuntimeError("PluginType is read once, after InitializeProcess: set it there")
        self.__dict__["_dl_plugin_type"] = value

    # -- logging and failure -------------------------------------------------------------------------------

    def LogInfo(self, message: str) -> None:  # noqa: N802
        _session(self).log("INFO", _text(message, "LogInfo's message"))

    def LogWarning(self, message: str) -> None:  # noqa: N802
        _session(self).log("WARNING", _text(message, "LogWarning's message"))

    def LogStdout(self, message: str) -> None:  # noqa: N802
        _session(self).log("STDOUT", _text(message, "LogStdout's message"))

    def DebugMessage(self, message: str) -> None:  # noqa: N802
        _session(self).log("DEBUG", _text(message, "DebugMessage's message"))

    def FailRender(self, message: str) -> None:  # noqa: N802
        """Raises :class:`FailRenderError`: the task fails and ``message`` is its error report."""
        raise FailRenderError(_text(message, "FailRender's message"))

    def AbortRender(self, message: str, level: Optional[_AbortLevel] = None) -> None:  # noqa: N802
        """Fail the task from any thread: on the plugin's thread it raises like FailRender; from another
        thread it records the failure, which the plugin thread raises at its next process call, IsCanceled()
        check or when RenderTasks returns."""
        _text(message, "AbortRender's message")
        if level is not None and not isinstance(level, _AbortLevel):
            raise TypeError(f"AbortRender's level must be ManagedProcess.AbortLevel.Fatal, not {level!r}")
        if _session(self).abort(message):
            raise FailRenderError(message)

    # -- progress ------------------------------------------------------------------------------------------

    def SetProgress(self, progress: float) -> None:  # noqa: N802
        value = _number(progress, "SetProgress's progress")
        if not math.isfinite(value) or not 0.0 <= value <= 100.0:
            raise ValueError(f"SetProgress takes a finite percentage from 0 to 100, not {progress!r}")
        _session(self).set_progress(value)

    def SetStatusMessage(self, message: str) -> None:  # noqa: N802
        _session(self).set_status(_text(message, "SetStatusMessage's message"))

    # -- PluginInfo ----------------------------------------------------------------------------------------

    def _dl_info(self, key: str) -> Optional[str]:
        return _session(self).plugin_info().get(_text(key, "the PluginInfo key"))

    def GetPluginInfoEntry(self, key: str) -> str:  # noqa: N802
        value = self._dl_info(key)
        if value is None:
            raise DeadlineException(f"the job's PluginInfo has no key {key!r} (Job Properties > Plugin); use "
                                    "GetPluginInfoEntryWithDefault for an optional key")
        return value

    def GetPluginInfoEntryWithDefault(self, key: str, default: str) -> str:  # noqa: N802
        value = self._dl_info(key)
        return _text(default, "the default") if value is None else value

    def GetBooleanPluginInfoEntry(self, key: str) -> bool:  # noqa: N802
        return _parsed(self.GetPluginInfoEntry(key), "bool", f"PluginInfo {key}")

    def GetBooleanPluginInfoEntryWithDefault(self, key: str, default: bool) -> bool:  # noqa: N802
        _boolean(default, "the default")
        value = self._dl_info(key)
        return default if value is None else _parsed(value, "bool", f"PluginInfo {key}")

    def GetIntegerPluginInfoEntry(self, key: str) -> int:  # noqa: N802
        return _parsed(self.GetPluginInfoEntry(key), "int", f"PluginInfo {key}")

    def GetIntegerPluginInfoEntryWithDefault(self, key: str, default: int) -> int:  # noqa: N802
        _integer(default, "the default")
        value = self._dl_info(key)
        return default if value is None else _parsed(value, "int", f"PluginInfo {key}")

    def GetFloatPluginInfoEntry(self, key: str) -> float:  # noqa: N802
        return _parsed(self.GetPluginInfoEntry(key), "float", f"PluginInfo {key}")

    def GetFloatPluginInfoEntryWithDefault(self, key: str, default: float) -> float:  # noqa: N802
        default = _number(default, "the default")
        value = self._dl_info(key)
        return default if value is None else _parsed(value, "float", f"PluginInfo {key}")

    # -- context -------------------------------------------------------------------------------------------

    def GetJob(self) -> Job:  # noqa: N802
        return _session(self).job()

    def GetCurrentTask(self) -> Task:  # noqa: N802
        return _session(self).current_task()

    def GetStartFrame(self) -> int:  # noqa: N802
        return _session(self).start_frame()

    def GetEndFrame(self) -> int:  # noqa: N802
        return _session(self).end_frame()

    def GetCurrentTaskId(self) -> str:  # noqa: N802
        return _session(self).current_task().TaskId

    def GetThreadNumber(self) -> int:  # noqa: N802
        return _session(self).worker.thread_number

    def GetSlaveName(self) -> str:  # noqa: N802
        return _session(self).worker.name

    def GetJobsDataDirectory(self) -> str:  # noqa: N802
        return str(_session(self).jobs_data_dir)

    def GetPluginDirectory(self) -> str:  # noqa: N802
        return str(_session(self).plugin_dir)

    def GetDataFilename(self) -> Optional[str]:  # noqa: N802
        names = _session(self).aux_filenames()
        return names[0] if names else None

    def GetAuxiliaryFilenames(self) -> List[str]:  # noqa: N802
        return _session(self).aux_filenames()

    def CreateTempDirectory(self, prefix: str) -> str:  # noqa: N802
        return str(_session(self).create_temp_dir(_text(prefix, "CreateTempDirectory's prefix")))

    def IsCanceled(self) -> bool:  # noqa: N802
        return _session(self).is_canceled()

    # -- processes -----------------------------------------------------------------------------------------

    def RunProcess(self, executable: str, arguments: str, startupDirectory: str,  # noqa: N802, N803
                   timeoutMilliseconds: int) -> int:  # noqa: N803
        return _session(self).run_process(self, _text(executable, "the executable"),
                                          _text(arguments, "the arguments"),
                                          _text(startupDirectory, "the startup directory"),
                                          _integer(timeoutMilliseconds, "the timeout in milliseconds"))

    def RunManagedProcess(self, process: ManagedProcess) -> None:  # noqa: N802
        """Runs ``process`` until it exits (see ManagedProcess); returns None, read ``process.ExitCode``.
        On cancel: kills the process at once (SIGKILL; with its children when it set UseProcessTree) and raises
        TaskCanceledError."""
        _session(self).run_managed(self, _managed(process))

    def StartMonitoredManagedProcess(self, name: str, process: ManagedProcess) -> None:  # noqa: N802
        _session(self).start_monitored(self, _text(name, "the process name"), _managed(process))

    def VerifyMonitoredManagedProcess(self, name: str) -> None:  # noqa: N802
        _session(self).verify_monitored(self, _text(name, "the process name"))

    def MonitoredManagedProcessIsRunning(self, name: str) -> bool:  # noqa: N802
        return _session(self).monitored_is_running(self, _text(name, "the process name"))

    def FlushMonitoredManagedProcessStdout(self, name: str) -> None:  # noqa: N802
        _session(self).flush_monitored(self, _text(name, "the process name"), handling=True)

    def FlushMonitoredManagedProcessStdoutNoHandling(self, name: str) -> None:  # noqa: N802
        _session(self).flush_monitored(self, _text(name, "the process name"), handling=False)

    def WaitForMonitoredManagedProcessToExit(self, name: str, timeoutMilliseconds: int) -> bool:  # noqa: N802, N803
        return _session(self).wait_monitored(self, _text(name, "the process name"),
                                             _integer(timeoutMilliseconds, "the timeout in milliseconds"))

    def ShutdownMonitoredManagedProcess(self, name: str) -> None:  # noqa: N802
        _session(self).shutdown_monitored(self, _text(name, "the process name"))

    def SetMonitoredManagedProcessExitCheckingFlag(self, name: str, enabled: bool) -> None:  # noqa: N802
        """Off: an exit of the process ``name`` is not reported (no MonitoredManagedProcessExit, no failure)."""
        _session(self).set_exit_checking(_text(name, "the process name"), _boolean(enabled, "the flag"))

    def GetMonitoredManagedProcessExitCode(self, name: str) -> int:  # noqa: N802
        return _session(self).monitored_exit_code(_text(name, "the process name"))

    def WriteStdinToMonitoredManagedProcess(self, name: str, text: str) -> None:  # noqa: N802
        _session(self).write_stdin_monitored(self, _text(name, "the process name"), _text(text, "the text"))

    def CheckForMonitoredManagedProcessPopups(self, name: str) -> str:  # noqa: N802
        _session(self).monitored(_text(name, "the process name"))
        return ""  # no desktop, no popups

    # -- environment ---------------------------------------------------------------------------------------

    def SetProcessEnvironmentVariable(self, key: str, value: str) -> None:  # noqa: N802
        _session(self).process_env[_text(key, "the variable name")] = _text(value, "the variable value")

    def GetProcessEnvironmentVariable(self, key: str) -> str:  # noqa: N802
        return _session(self).process_env.get(_text(key, "the variable name"), "")

    # -- affinity ------------------------------------------------------------------------------------------

    def OverrideGpuAffinity(self) -> bool:  # noqa: N802
        return _session(self).worker.gpu_affinity is not None

    def GpuAffinity(self) -> List[int]:  # noqa: N802
        affinity = _session(self).worker.gpu_affinity
        return list(affinity) if affinity is not None else []

    def OverrideCpuAffinity(self) -> bool:  # noqa: N802
        return _session(self).worker.cpu_affinity is not None

    def CpuAffinity(self) -> List[int]:  # noqa: N802
        affinity = _session(self).worker.cpu_affinity
        return list(affinity) if affinity is not None else []


def _managed(process: Any) -> ManagedProcess:
    if not isinstance(process, ManagedProcess):
        raise TypeError(f"expected a FranticX.Processes.ManagedProcess, not {type(process).__name__}")
    if "_dl_env" not in process.__dict__:
        raise RuntimeError(f"{type(process).__name__}.__init__ must call super().__init__() first")
    return process


# ---------------------------------------------------------------------------------------------------------
# Deadline.Events.DeadlineEventListener


EVENT_CALLBACKS = (
    "OnJobSubmittedCallback", "OnJobStartedCallback", "OnJobFinishedCallback", "OnJobRequeuedCallback",
    "OnJobFailedCallback", "OnJobSuspendedCallback", "OnJobResumedCallback", "OnJobPendedCallback",
    "OnJobReleasedCallback", "OnJobDeletedCallback", "OnJobErrorCallback", "OnJobPurgedCallback",
    "OnHouseCleaningCallback", "OnRepositoryRepairCallback", "OnSlaveStartedCallback", "OnSlaveStoppedCallback",
    "OnSlaveIdleCallback", "OnSlaveRenderingCallback", "OnSlaveStartingJobCallback", "OnSlaveStalledCallback",
)


class DeadlineEventListener(_ConfigEntries, StrictObject):
    """Base class of event plugins: ``self.OnJobFinishedCallback += self.OnJobFinished``; job handlers get
    ``(job)``. LogInfo/LogWarning go to the log of the Worker that runs the event."""

    _dl_kind = "DeadlineEventListener"

    def __init__(self) -> None:
        init_deadline_object(self)
        self.__dict__["_dl_session"] = None

    def LogInfo(self, message: str) -> None:  # noqa: N802
        _session(self).log("INFO", _text(message, "LogInfo's message"))

    def LogWarning(self, message: str) -> None:  # noqa: N802
        _session(self).log("WARNING", _text(message, "LogWarning's message"))


for _name in EVENT_CALLBACKS:
    _slot = EventSlot()
    _slot.__set_name__(DeadlineEventListener, _name)
    setattr(DeadlineEventListener, _name, _slot)


# ---------------------------------------------------------------------------------------------------------
# Deadline.Scripting


def _job_arg(job: Any) -> Job:
    if not isinstance(job, Job):
        raise TypeError(f"expected a Deadline Job, not {type(job).__name__}")
    return job


def _command(name: str, job: Job, **extra: Any) -> None:
    current_connection().backend.job_command({"Command": name, "JobID": job.JobId, **extra})


def _task_ids(tasks: Any) -> List[int]:
    if not isinstance(tasks, (list, tuple)) or not all(isinstance(t, Task) for t in tasks):
        raise TypeError("expected a list of Deadline Tasks (from RepositoryUtils.GetJobTasks)")
    return [int(t.TaskId) for t in tasks]


class RepositoryUtils(metaclass=StrictMeta):
    """``Deadline.Scripting.RepositoryUtils``: the repository the Worker is connected to."""

    @staticmethod
    def GetRootDirectory() -> str:  # noqa: N802
        return str(current_connection().folder.root)

    @staticmethod
    def CheckPathMapping(path: str) -> str:  # noqa: N802
        """The repository's Mapped Paths applied to ``path`` (identity when no rule matches)."""
        return current_connection().folder.check_path_mapping(_text(path, "the path"))

    @staticmethod
    def GetPathMappings() -> List[List[str]]:  # noqa: N802
        """``[[path, replacement], ...]`` for this OS, in rule order (the double's shape)."""
        return [[rule.path, rule.replacement] for rule in current_connection().folder.path_mapping_rules()]

    @staticmethod
    def GetJob(jobId: str, invalidate: bool) -> Optional[Job]:  # noqa: N802, N803
        _text(jobId, "the job id")
        _boolean(invalidate, "invalidate")
        data = current_connection().backend.job_json(jobId)
        return None if data is None else Job(data)

    @staticmethod
    def GetJobs(invalidate: bool) -> List[Job]:  # noqa: N802
        _boolean(invalidate, "invalidate")
        return [Job(data) for data in current_connection().backend.jobs_json()]

    @staticmethod
    def GetJobTasks(job: Job, invalidate: bool) -> List[Task]:  # noqa: N802
        _boolean(invalidate, "invalidate")
        job = _job_arg(job)
        return tasks_of(job, current_connection().backend.tasks_json(job.JobId))

    @staticmethod
    def SaveJob(job: Job) -> None:  # noqa: N802
        job = _job_arg(job)
        current_connection().backend.job_command({"Command": "save", "Job": job._dl_data})

    @staticmethod
    def UpdateJobOutputFileNames(job: Job, fileNames: List[str]) -> None:  # noqa: N802, N803
        job = _job_arg(job)
        if not isinstance(fileNames, (list, tuple)) or not all(isinstance(n, str) for n in fileNames):
            raise TypeError("UpdateJobOutputFileNames takes the job and a list of file names")
        data = current_connection().backend.job_json(job.JobId)
        if data is None:
            raise DeadlineException(f"the job {job.JobId} does not exist")
        data["OutFile"] = list(fileNames)
        current_connection().backend.job_command({"Command": "save", "Job": data})

    @staticmethod
    def CompleteJob(job: Job) -> None:  # noqa: N802
        _command("complete", _job_arg(job))

    @staticmethod
    def FailJob(job: Job) -> None:  # noqa: N802
        _command("fail", _job_arg(job))

    @staticmethod
    def SuspendJob(job: Job) -> None:  # noqa: N802
        _command("suspend", _job_arg(job))

    @staticmethod
    def ResumeJob(job: Job) -> None:  # noqa: N802
        _command("resume", _job_arg(job))

    @staticmethod
    def RequeueJob(job: Job) -> None:  # noqa: N802
        _command("requeue", _job_arg(job))

    @staticmethod
    def RequeueTasks(job: Job, tasks: List[Task]) -> None:  # noqa: N802
        job = _job_arg(job)
        current_connection().backend.task_command({"Command": "requeue", "JobID": job.JobId,
                                                   "TaskList": _task_ids(tasks)})

    @staticmethod
    def CompleteTasks(job: Job, tasks: List[Task]) -> None:  # noqa: N802
        job = _job_arg(job)
        current_connection().backend.task_command({"Command": "complete", "JobID": job.JobId,
                                                   "TaskList": _task_ids(tasks)})


def _candidates(text: str) -> List[str]:
    return [item.strip() for item in re.split(r"[;\r\n]+", text) if item.strip()]


class FileUtils(metaclass=StrictMeta):
    """``Deadline.Scripting.FileUtils``."""

    @staticmethod
    def SearchFileList(fileList: str) -> str:  # noqa: N802, N803
        """The first existing file of a ``;``-separated list, or ``""``."""
        for candidate in _candidates(_text(fileList, "the file list")):
            if os.path.isfile(candidate):
                return candidate
        return ""

    @staticmethod
    def SearchDirectoryList(directoryList: str) -> str:  # noqa: N802, N803
        """The first existing folder of a ``;``-separated list, or ``""``."""
        for candidate in _candidates(_text(directoryList, "the folder list")):
            if os.path.isdir(candidate):
                return candidate
        return ""

    @staticmethod
    def FileExists(path: str) -> bool:  # noqa: N802
        return os.path.isfile(_text(path, "the path"))


class StringUtils(metaclass=StrictMeta):
    """``Deadline.Scripting.StringUtils``."""

    @staticmethod
    def ParseBoolean(text: str) -> bool:  # noqa: N802
        return _parsed(_text(text, "the text"), "bool", "the text")

    @staticmethod
    def ParseBooleanWithDefault(text: str, default: bool) -> bool:  # noqa: N802
        _boolean(default, "the default")
        try:
            return parse_boolean(_text(text, "the text"), "the text")
        except ValueFormatError:
            return default

    @staticmethod
    def ParseLeadingNumber(text: str) -> float:  # noqa: N802
        match = re.match(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)", _text(text, "the text"))
        return float(match.group(0)) if match else 0.0

    @staticmethod
    def BlankIfEitherIsBlank(first: str, second: str) -> str:  # noqa: N802
        _text(first, "the first string")
        _text(second, "the second string")
        return "" if not first or not second else first + second


class SystemUtils(metaclass=StrictMeta):
    """``Deadline.Scripting.SystemUtils``."""

    @staticmethod
    def IsRunningOnLinux() -> bool:  # noqa: N802
        return platform.system() == "Linux"

    @staticmethod
    def IsRunningOnWindows() -> bool:  # noqa: N802
        return platform.system() == "Windows"

    @staticmethod
    def IsRunningOnMac() -> bool:  # noqa: N802
        return platform.system() == "Darwin"

    @staticmethod
    def GetCpuCount() -> int:  # noqa: N802
        return os.cpu_count() or 1

    @staticmethod
    def Sleep(milliseconds: int) -> None:  # noqa: N802
        time.sleep(_integer(milliseconds, "the milliseconds") / 1000.0)


__all__ = [
    "DeadlineEventListener", "DeadlineException", "DeadlinePlugin", "FailRenderError", "FileUtils",
    "ManagedProcess", "PluginContractError", "PluginType", "RepositoryUtils", "StdoutHandler", "StringUtils",
    "SystemUtils", "TaskCanceledError", "EVENT_CALLBACKS",
]
