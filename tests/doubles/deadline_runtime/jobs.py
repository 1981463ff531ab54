"""Deadline's ``Job`` and ``Task`` objects (``Deadline.Jobs``), built from the Web Service double's JSON.

A :class:`Job` is a snapshot: ``RepositoryUtils.GetJob(id, True)`` fetches a fresh one. Attribute names
follow a ``dir()`` of a real Deadline 10 Job (``JobName`` and ``Name``, ``JobFramesList`` and
``FramesList``...); the double offers the subset in :data:`JOB_FIELDS`, and reading any other attribute
raises AttributeError naming it. Status texts are the enum names (``Active``, ``Completed``...); dates are
``datetime`` (UTC) or None when unset (Deadline gives .NET DateTimes). A missing PluginInfo, ExtraInfo or
environment key reads as ``""`` (the double's guess: public plugins test the result with ``if``).

Writable: ``JobExtraInfo0``-``9`` (and ``ExtraInfo0``-``9``), and the ``Set...KeyValue`` methods; changes
reach the repository only through ``RepositoryUtils.SaveJob(job)``.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional

from tests.doubles.deadline.framelist import chunk_frames, parse_frame_list

JOB_STATUS_NAMES = {0: "Unknown", 1: "Active", 2: "Suspended", 3: "Completed", 4: "Failed", 6: "Pending"}
TASK_STATUS_NAMES = {1: "Unknown", 2: "Queued", 3: "Suspended", 4: "Rendering", 5: "Completed", 6: "Failed",
                     8: "Pending"}
ON_JOB_COMPLETE_NAMES = {0: "Archive", 1: "Delete", 2: "Nothing"}


def _date(text: Any) -> Optional[datetime]:
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return None
    value = datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S")
    return value.replace(tzinfo=timezone.utc)


def _props(key: str) -> Callable[[Job], Any]:
    return lambda job: copy.deepcopy(job._dl_data["Props"].get(key))


def _top(key: str) -> Callable[[Job], Any]:
    return lambda job: copy.deepcopy(job._dl_data.get(key))


JOB_FIELDS: Dict[str, Callable[[Job], Any]] = {}


def _field(names: str, getter: Callable[[Job], Any]) -> None:
    for name in names.split():
        JOB_FIELDS[name] = getter


_field("JobId ID", lambda job: job._dl_data["_id"])
_field("JobName Name", _props("Name"))
_field("JobBatchName BatchName", _props("Batch"))
_field("JobUserName UserName SubmitUserName", _props("User"))
_field("JobPlugin PluginName", _top("Plug"))
_field("JobStatus Status", lambda job: JOB_STATUS_NAMES.get(int(job._dl_data["Stat"]), "Unknown"))
_field("JobFrames Frames", _props("Frames"))
_field("JobFramesList FramesList", lambda job: list(job._dl_frames()))
_field("FirstFrame", lambda job: job._dl_frames()[0])
_field("LastFrame", lambda job: job._dl_frames()[-1])
_field("JobFramesPerTask ChunkSize", _props("Chunk"))
_field("JobTaskCount TaskCount", _props("Tasks"))
_field("JobPool Pool", _props("Pool"))
_field("JobSecondaryPool SecondaryPool", _props("SecPool"))
_field("JobGroup Group", _props("Grp"))
_field("JobPriority Priority", _props("Pri"))
_field("JobComment Comment", _props("Cmmt"))
_field("JobDepartment Department", _props("Dept"))
_field("JobConcurrentTasks ConcurrentTasks", _props("Conc"))
_field("JobLimitTasksToNumberOfCpus LimitTasksToNumberOfCpus", _props("ConcLimt"))
_field("JobMachineLimit MachineLimit", _props("MachLmt"))
_field("JobLimitGroups LimitGroups", _props("Limits"))
_field("JobListedSlaves ListedSlaves", _props("ListedSlaves"))
_field("JobWhitelistFlag WhitelistFlag", _props("White"))
_field("JobOutputDirectories OutputDirectories", _top("OutDir"))
_field("JobOutputFileNames OutputFileNames", _top("OutFile"))
_field("JobAuxiliarySubmissionFileNames AuxiliarySubmissionFileNames", _top("Aux"))
_field("JobSubmitMachine SubmitMachineName", _top("Mach"))
_field("JobSuppressEvents SuppressEvents", _props("NoEvnt"))
_field("EventOptIns", _props("EventOI"))
_field("JobForceReloadPlugin ReloadRenderer", _props("Reload"))
_field("JobSequentialJob SequentialJobFlag", _props("Seq"))
_field("JobProtected Protected", _props("Protect"))
_field("JobInterruptible InterruptibleFlag", _props("Int"))
_field("JobTaskTimeoutSeconds TaskTimeoutSeconds", _props("MaxTime"))
_field("JobCustomPluginDirectory CustomPluginDirectory", _props("PlugDir"))
_field("JobUseJobEnvironmentOnly UseJobEnvironmentOnly", _props("EnvOnly"))
_field("JobOverrideTaskFailureDetection OverrideTaskFailureDetection", _props("TskFailOvr"))
_field("JobFailureDetectionTaskErrors FailureDetectionTaskErrors", _props("TskFailErr"))
_field("JobOverrideJobFailureDetection OverrideJobFailureDetection", _props("JobFailOvr"))
_field("JobFailureDetectionJobErrors FailureDetectionJobErrors", _props("JobFailErr"))
_field("JobOnJobComplete OnJobComplete", lambda job: ON_JOB_COMPLETE_NAMES.get(job._dl_data["Props"]["OnComp"], ""))
_field("JobDependencyIDs", lambda job: [dep["JobID"] for dep in job._dl_data["Props"].get("Dep", [])])
_field("JobCompletedTasks CompletedChunks", _top("CompletedChunks"))
_field("JobQueuedTasks QueuedChunks", _top("QueuedChunks"))
_field("JobRenderingTasks RenderingChunks", _top("RenderingChunks"))
_field("JobFailedTasks FailedChunks", _top("FailedChunks"))
_field("JobSuspendedTasks SuspendedChunks", _top("SuspendedChunks"))
_field("JobPendingTasks PendingChunks", _top("PendingChunks"))
_field("JobSubmitDateTime SubmitDateTime", lambda job: _date(job._dl_data.get("Date")))
_field("JobStartedDateTime StartedDateTime", lambda job: _date(job._dl_data.get("DateStart")))
_field("JobCompletedDateTime CompletedDateTime", lambda job: _date(job._dl_data.get("DateComp")))
for _index in range(10):
    _field(f"JobExtraInfo{_index} ExtraInfo{_index}", _props(f"Ex{_index}"))
    _field(f"JobTaskExtraInfoName{_index} TaskExtraInfoName{_index}", _props(f"TaskEx{_index}"))

_WRITABLE = {f"{prefix}ExtraInfo{index}": f"Ex{index}" for prefix in ("Job", "") for index in range(10)}


def _check_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    return value


class Job:
    """A Deadline job (see the module docstring)."""

    def __init__(self, data: Dict[str, Any]) -> None:
        if not isinstance(data, dict) or "_id" not in data or "Props" not in data:
            raise TypeError("a Job is built from the Web Service's job object")
        object.__setattr__(self, "_dl_data", copy.deepcopy(data))

    def _dl_frames(self) -> List[int]:
        return parse_frame_list(self._dl_data["Props"]["Frames"])

    def _dl_task_frames(self) -> List[List[int]]:
        return chunk_frames(self._dl_frames(), int(self._dl_data["Props"]["Chunk"]))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        getter = JOB_FIELDS.get(name)
        if getter is None:
            raise AttributeError(f"Deadline's Job has no attribute {name!r} (or the double does not offer it: see "
                                 "tests/doubles/deadline_runtime/jobs.py)")
        return getter(self)

    def __setattr__(self, name: str, value: Any) -> None:
        key = _WRITABLE.get(name)
        if key is None:
            if name in JOB_FIELDS:
                raise AttributeError(f"Job.{name} is read-only in the double")
            raise AttributeError(f"Deadline's Job has no attribute {name!r}")
        self._dl_data["Props"][key] = _check_text(value, f"Job.{name}")

    def __dir__(self) -> List[str]:
        return sorted(set(JOB_FIELDS) | {name for name in type(self).__dict__ if name[0].isupper()})

    # -- key/value dictionaries ----------------------------------------------------------------------------

    def _dict(self, key: str) -> Dict[str, str]:
        return self._dl_data["Props"].setdefault(key, {})

    def GetJobPluginInfoKeyValue(self, key: str) -> str:  # noqa: N802 (Deadline's names)
        return self._dict("PlugInfo").get(_check_text(key, "key"), "")

    def GetJobPluginInfoKeys(self) -> List[str]:  # noqa: N802
        return list(self._dict("PlugInfo"))

    def SetJobPluginInfoKeyValue(self, key: str, value: str) -> None:  # noqa: N802
        self._dict("PlugInfo")[_check_text(key, "key")] = _check_text(value, "value")

    def GetJobExtraInfoKeyValue(self, key: str) -> str:  # noqa: N802
        return self._dict("ExDic").get(_check_text(key, "key"), "")

    def GetJobExtraInfoKeyValueWithDefault(self, key: str, default: str) -> str:  # noqa: N802
        return self._dict("ExDic").get(_check_text(key, "key"), _check_text(default, "default"))

    def GetJobExtraInfoKeys(self) -> List[str]:  # noqa: N802
        return list(self._dict("ExDic"))

    def SetJobExtraInfoKeyValue(self, key: str, value: str) -> None:  # noqa: N802
        self._dict("ExDic")[_check_text(key, "key")] = _check_text(value, "value")

    def DeleteJobExtraInfoKey(self, key: str) -> None:  # noqa: N802
        self._dict("ExDic").pop(_check_text(key, "key"), None)

    def GetJobEnvironmentKeyValue(self, key: str) -> str:  # noqa: N802
        return self._dict("Env").get(_check_text(key, "key"), "")

    def GetJobEnvironmentKeys(self) -> List[str]:  # noqa: N802
        return list(self._dict("Env"))

    def SetJobEnvironmentKeyValue(self, key: str, value: str) -> None:  # noqa: N802
        self._dict("Env")[_check_text(key, "key")] = _check_text(value, "value")

    def __repr__(self) -> str:
        return f"<Job {self._dl_data['_id']} {self._dl_data['Props'].get('Name')!r}>"


class Task:
    """A Deadline task (``TaskId`` is text, as ``GetCurrentTaskId()`` gives it)."""

    _FIELDS = ("TaskId", "JobId", "TaskFrameList", "TaskFrameString", "TaskStatus", "TaskSlaveName",
               "TaskProgress", "TaskErrorCount", "TaskStatusMessage")

    def __init__(self, job_id: str, task_id: int, frames: List[int], data: Optional[Dict[str, Any]] = None) -> None:
        data = data or {}
        values = {
            "TaskId": str(task_id),
            "JobId": job_id,
            "TaskFrameList": list(frames),
            "TaskFrameString": data.get("Frames") or (f"{frames[0]}-{frames[-1]}" if frames else ""),
            "TaskStatus": TASK_STATUS_NAMES.get(int(data.get("Stat", 4)), "Unknown"),
            "TaskSlaveName": data.get("Slave", ""),
            "TaskProgress": data.get("Prog", "0 %"),
            "TaskErrorCount": int(data.get("Errs", 0)),
            "TaskStatusMessage": data.get("RndStat", ""),
        }
        object.__setattr__(self, "_dl_values", values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        values = self.__dict__["_dl_values"]
        if name not in values:
            raise AttributeError(f"Deadline's Task has no attribute {name!r}")
        return copy.deepcopy(values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Task.{name} is read-only in the double")

    def __repr__(self) -> str:
        values = self.__dict__["_dl_values"]
        return f"<Task {values['JobId']}_{values['TaskId']} {values['TaskFrameString']}>"


def tasks_of(job: Job, tasks_json: Dict[str, Any]) -> List[Task]:
    """The job's tasks with their own frames (a stepped list keeps its frames, unlike ``Frames`` text)."""
    chunks = job._dl_task_frames()
    result = []
    for data in tasks_json.get("Tasks", []):
        task_id = int(data["TaskID"])
        frames = chunks[task_id] if task_id < len(chunks) else []
        result.append(Task(job.JobId, task_id, frames, data))
    return result


__all__ = ["JOB_FIELDS", "Job", "Task", "tasks_of"]
