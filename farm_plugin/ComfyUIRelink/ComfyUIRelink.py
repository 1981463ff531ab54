"""comfyfarm's Deadline event plugin: when a comfyfarm job ends, hand its results back to Flame.

On ``OnJobFinished`` (and ``OnJobFailed``) it runs ``python -m farm_plugin.completion.cli`` in the
runtime's Python: the job's outputs are checked on disk against its frame list, and a completion record
is written atomically into the inbox named by the job record, in the artist's paths. A repeated event
writes nothing new. Errors never reach Deadline: they go to this plugin's log.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from Deadline.Events import DeadlineEventListener
from Deadline.Scripting import FileUtils, RepositoryUtils

COMFYFARM_VERSION = "0.1.0"  # the product version (farm_plugin.__version__)
COMPLETION_TIMEOUT_SECONDS = 600


def GetDeadlineEventListener():  # noqa: N802 (Deadline's entry point)
    return ComfyUIRelinkListener()


def CleanupDeadlineEventListener(listener):  # noqa: N802
    listener.Cleanup()


def frames_text(frames):
    runs: list[list[int]] = []
    for frame in sorted(int(f) for f in frames):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs)


class ComfyUIRelinkListener(DeadlineEventListener):
    def __init__(self):
        super().__init__()
        self.OnJobFinishedCallback += self.OnJobFinished
        self.OnJobFailedCallback += self.OnJobFailed

    def Cleanup(self):  # noqa: N802
        del self.OnJobFinishedCallback
        del self.OnJobFailedCallback

    def OnJobFinished(self, job):  # noqa: N802
        self.hand_back(job, failed=False)

    def OnJobFailed(self, job):  # noqa: N802
        self.hand_back(job, failed=True)

    def hand_back(self, job, failed):
        try:
            self.write_record(job, failed)
        except Exception as exc:  # never raise into Deadline
            self.LogWarning(f"comfyfarm relink: job {job.JobId}: could not hand the results back: {exc!r}")

    def write_record(self, job, failed):
        job = RepositoryUtils.GetJob(job.JobId, True) or job  # fresh from the database, not the event's copy
        record_value = job.GetJobPluginInfoKeyValue("JobRecord")
        if not record_value:
            self.LogInfo(f"comfyfarm relink: job {job.JobId} has no JobRecord: not a comfyfarm job")
            return
        record_path = RepositoryUtils.CheckPathMapping(record_value)
        record = json.loads(Path(record_path).read_text(encoding="utf-8"))
        python = FileUtils.SearchFileList(";".join(
            p.strip() for p in re.split(r"[;\r\n]+", self.GetConfigEntry("PythonExecutable")) if p.strip()))
        if not python:
            self.LogWarning("comfyfarm relink: none of the PythonExecutable candidates exists here: set it in "
                            "Configure Events > ComfyUIRelink")
            return
        part = job.GetJobPluginInfoKeyValue("Part") or "main"
        outcome = "failed" if failed else "finished"
        self.LogInfo(f"comfyfarm {COMFYFARM_VERSION} relink: job {job.JobId} ({part}) {outcome}: checking its outputs")
        command = [python, "-m", "farm_plugin.completion.cli", "--job", record_path, "--deadline-job-id",
                   str(job.JobId), "--part", part,
                   "--output-pattern", RepositoryUtils.CheckPathMapping(record["output"]["pattern"])]
        if part == "preview":  # the main job waits for the preview, so it checks the whole clip
            command += ["--frames", frames_text(job.JobFramesList)]
        if record.get("inbox"):
            command += ["--inbox", RepositoryUtils.CheckPathMapping(record["inbox"])]
        if failed:
            command += ["--failed", "--reason", f"the Deadline job {job.JobId} failed: see its error reports"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=COMPLETION_TIMEOUT_SECONDS)
        for line in (result.stdout + result.stderr).splitlines():
            if line.strip():
                self.LogInfo(line)
        if result.returncode != 0:
            self.LogWarning(f"comfyfarm relink: job {job.JobId}: the runtime exited with code {result.returncode}")
