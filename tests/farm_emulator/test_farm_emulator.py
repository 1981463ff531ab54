"""Tests of the farm emulator itself, with a tiny Advanced sample plugin written into tmp_path (the real ComfyUI
plugin has its own end-to-end tests). Each Worker is a real process running the plugin through the runtime
double; jobs go into the Web Service double's store.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from tests.doubles.deadline.store import REPORT_ERROR, REPORT_LOG, REPORT_REQUEUE, TASK_COMPLETED, TASK_RENDERING
from tests.doubles.deadline_runtime.processes import pid_alive
from tests.doubles.deadline_runtime.worker_environment import (
    STUDIO_LIBRARY_FOLDER,
    STUDIO_NO_PROXY,
    deadline_library_folder,
)
from tests.farm_emulator.farm import REPO_ROOT, Farm, FarmError, start_farm

PLUGIN = '''
import os
import sys

from Deadline.Plugins import DeadlinePlugin, PluginType
from FranticX.Processes import ManagedProcess


def GetDeadlinePlugin():
    return FramesPlugin()


def CleanupDeadlinePlugin(plugin):
    plugin.Cleanup()


class Writer(ManagedProcess):
    """writer.py (next to this file) writes one file per frame; its lines drive progress and failures."""

    def __init__(self, plugin, frames):
        super().__init__()
        self.plugin = plugin
        self.frames = frames
        self.InitializeProcessCallback += self.InitializeProcess
        self.RenderExecutableCallback += self.RenderExecutable
        self.RenderArgumentCallback += self.RenderArgument

    def Cleanup(self):
        for handler in self.StdoutHandlers:
            del handler.HandleCallback
        del self.InitializeProcessCallback
        del self.RenderExecutableCallback
        del self.RenderArgumentCallback

    def InitializeProcess(self):
        self.StdoutHandling = True
        self.UseProcessTree = True
        self.TerminateOnExit = True
        self.SetEnvironmentVariable("WRITER_WORKER", self.plugin.GetSlaveName())
        self.SetEnvironmentVariable("WRITER_GPUS", ",".join(str(g) for g in self.plugin.GpuAffinity()))
        self.AddStdoutHandlerCallback(r"PROGRESS ([0-9.]+)").HandleCallback += self.Progress
        self.AddStdoutHandlerCallback(r"FRAME (-?\\d+) done").HandleCallback += self.Frame
        self.AddStdoutHandlerCallback(r"ERROR (.*)").HandleCallback += self.Error

    def RenderExecutable(self):
        return sys.executable

    def RenderArgument(self):
        plugin = self.plugin
        arguments = [os.path.join(plugin.GetPluginDirectory(), "writer.py"), plugin.GetPluginInfoEntry("OutputDir"),
                     plugin.GetPluginInfoEntryWithDefault("SleepPerFrame", "0"),
                     plugin.GetPluginInfoEntryWithDefault("FailOnceMarker", "-")]
        return " ".join('"' + a + '"' for a in arguments + [str(f) for f in self.frames])

    def Progress(self):
        self.plugin.SetProgress(float(self.GetRegexMatch(1)))

    def Frame(self):
        self.plugin.SetStatusMessage("frame " + self.GetRegexMatch(1))

    def Error(self):
        self.plugin.FailRender(self.GetRegexMatch(1))


class FramesPlugin(DeadlinePlugin):
    def __init__(self):
        super().__init__()
        self.InitializeProcessCallback += self.InitializeProcess
        self.StartJobCallback += self.StartJob
        self.RenderTasksCallback += self.RenderTasks
        self.EndJobCallback += self.EndJob

    def Cleanup(self):
        del self.InitializeProcessCallback
        del self.StartJobCallback
        del self.RenderTasksCallback
        del self.EndJobCallback

    def InitializeProcess(self):
        self.PluginType = PluginType.Advanced
        self.SingleFramesOnly = False

    def StartJob(self):
        self.LogInfo("sample plugin: StartJob")

    def RenderTasks(self):
        start, end = self.GetStartFrame(), self.GetEndFrame()
        frames = [f for f in self.GetJob().JobFramesList if start <= f <= end]
        writer = Writer(self, frames)
        try:
            self.RunManagedProcess(writer)
        finally:
            if self.IsCanceled():
                path = os.path.join(self.GetPluginInfoEntry("OutputDir"), f"canceled-{self.GetCurrentTaskId()}.txt")
                with open(path, "w") as stream:
                    stream.write("IsCanceled=True")
            writer.Cleanup()

    def EndJob(self):
        self.LogInfo("sample plugin: EndJob")
'''

WRITER = '''
import json
import os
import sys
import time

out, sleep_s, marker, *frames = sys.argv[1:]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "pids.txt"), "a") as stream:
    stream.write(f"{os.getpid()}\\n")
with open(os.path.join(out, "pythonpath.txt"), "w") as stream:
    stream.write(os.environ.get("PYTHONPATH", ""))
with open(os.path.join(out, "environment.json"), "w") as stream:
    json.dump(dict(os.environ), stream)
if marker != "-" and not os.path.exists(marker):
    open(marker, "w").close()
    print(f"ERROR simulated failure on frame {frames[0]}", flush=True)
    time.sleep(60)
for index, frame in enumerate(frames):
    time.sleep(float(sleep_s))
    with open(os.path.join(out, f"frame.{int(frame):04d}.txt"), "w") as stream:
        stream.write(f"{os.environ['WRITER_WORKER']} gpus={os.environ['WRITER_GPUS']}\\n")
    with open(os.path.join(out, "ledger.txt"), "a") as stream:
        stream.write(f"{frame}\\n")
    print(f"FRAME {frame} done", flush=True)
    print(f"PROGRESS {100.0 * (index + 1) / len(frames):.1f}", flush=True)
'''

EVENT = '''
import os

from Deadline.Events import DeadlineEventListener


def GetDeadlineEventListener():
    return Announce()


def CleanupDeadlineEventListener(listener):
    listener.Cleanup()


class Announce(DeadlineEventListener):
    def __init__(self):
        super().__init__()
        self.OnJobFinishedCallback += self.OnJobFinished

    def Cleanup(self):
        del self.OnJobFinishedCallback

    def OnJobFinished(self, job):
        with open(self.GetConfigEntry("LogPath"), "a") as stream:
            stream.write(f"{job.JobId} {os.getpid()}\\n")
        self.LogInfo(f"announced {job.JobName}")
'''

EVENT_PARAM = """\
[State]
Type=enum
Items=Global Enabled;Opt-In;Disabled
Default=Opt-In

[LogPath]
Type=filename
Default=
"""


# ---------------------------------------------------------------------------------------------------------
# helpers


def install_sample(farm: Farm, tmp_path: Path) -> None:
    source = tmp_path / "sample-plugin" / "Frames"
    source.mkdir(parents=True)
    (source / "Frames.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    (source / "writer.py").write_text(textwrap.dedent(WRITER), encoding="utf-8")
    farm.install_plugin(source, "Frames")


def submit(farm: Farm, output: Path, frames: str, chunk: int, *, sleep_per_frame: float = 0.0,
           job_info: Optional[Dict[str, Any]] = None, **plugin_info: str) -> str:
    info: Dict[str, Any] = {"Plugin": "Frames", "Name": f"frames {frames}", "Frames": frames, "ChunkSize": chunk}
    info.update(job_info or {})
    plugin_info = {"OutputDir": str(output), "SleepPerFrame": str(sleep_per_frame), **plugin_info}
    return farm.store.submit_job({"JobInfo": info, "PluginInfo": plugin_info})["_id"]


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, farm: Optional[Farm] = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{farm.describe() if farm else ''}")
        time.sleep(0.05)


def ledger(output: Path) -> List[int]:
    path = output / "ledger.txt"
    return [int(line) for line in path.read_text().split()] if path.is_file() else []


def rendering_on(farm: Farm, job_id: str, task_id: int) -> str:
    task = farm.store.task_json(job_id, task_id)
    return task["Slave"] if task["Stat"] == TASK_RENDERING else ""


# ---------------------------------------------------------------------------------------------------------
# tests


def test_workers_share_a_job_and_every_frame_is_done_once(farm: Farm, tmp_path: Path) -> None:
    install_sample(farm, tmp_path)
    output = tmp_path / "out"
    job_id = submit(farm, output, "1-24", 2, sleep_per_frame=0.1)
    names = farm.start_workers(3)

    assert farm.wait_for_job(job_id, timeout_s=40) == "Completed"
    assert sorted(ledger(output)) == list(range(1, 25))
    assert {p.name for p in output.glob("frame.*.txt")} == {f"frame.{f:04d}.txt" for f in range(1, 25)}
    workers_used = {r.worker for r in farm.store.reports(job_id, report_type=REPORT_LOG)}
    assert len(workers_used) >= 2, farm.describe(job_id)
    gpus = {name: f"gpus={index}" for index, name in enumerate(names)}
    for path in output.glob("frame.*.txt"):
        worker, seen = path.read_text().split()
        assert seen == gpus[worker]
    tasks = farm.store.tasks_json(job_id)["Tasks"]
    assert all(t["Stat"] == TASK_COMPLETED and t["Prog"] == "100 %" for t in tasks)
    assert [t["RndStat"] for t in tasks] == [f"frame {2 * i + 2}" for i in range(12)]
    task_log = farm.store.reports(job_id, task_id=0, report_type=REPORT_LOG)[0].text
    assert task_log.startswith(f"Worker: {farm.store.task_json(job_id, 0)['Slave']}\nTask: 0 (frames 1-2)\n")
    assert "0: STDOUT: FRAME 2 done" in task_log
    for name in workers_used:  # idle Workers leave the job: EndJob
        wait_for(lambda name=name: "sample plugin: EndJob" in farm.worker_log(name), 10, f"{name}'s EndJob", farm)


def test_a_killed_workers_task_is_requeued_as_stalled_and_finished_by_another(tmp_path: Path) -> None:
    farm = start_farm(tmp_path, stall_timeout_s=2.0)
    try:
        install_sample(farm, tmp_path)
        output = tmp_path / "out"
        job_id = submit(farm, output, "1-6", 3, sleep_per_frame=0.4)
        farm.start_workers(1)
        wait_for(lambda: rendering_on(farm, job_id, 0) == "worker-01" and ledger(output), 20, "a frame", farm)
        writer_pids = [int(p) for p in (output / "pids.txt").read_text().split()]
        farm.kill_worker("worker-01")
        assert not any(pid_alive(pid) for pid in writer_pids)
        farm.start_workers(1)

        assert farm.wait_for_job(job_id, timeout_s=30) == "Completed"
        requeues = farm.store.reports(job_id, task_id=0, report_type=REPORT_REQUEUE)
        assert len(requeues) == 1 and requeues[0].worker == "worker-01"
        assert requeues[0].text.startswith("Worker worker-01 stalled: no heartbeat for ")
        assert [(s.worker, s.task_id) for s in farm.bridge.stalls] == [("worker-01", 0)]
        assert farm.store.task_json(job_id, 0)["Slave"] == "worker-02"
        assert set(ledger(output)) == set(range(1, 7))
    finally:
        farm.close()
    assert farm.leftover_processes() == []


def test_fail_render_is_an_error_report_and_the_task_is_requeued_per_failure_detection(farm: Farm,
                                                                                      tmp_path: Path) -> None:
    install_sample(farm, tmp_path)
    output = tmp_path / "out"
    retried = submit(farm, output, "1-2", 2, FailOnceMarker=str(tmp_path / "failed-once"),
                     job_info={"OverrideTaskFailureDetection": True, "FailureDetectionTaskErrors": 2})
    failing = submit(farm, tmp_path / "out2", "5", 1, FailOnceMarker=str(tmp_path / "fails-the-job"))
    farm.start_workers(1)

    assert farm.wait_for_job(retried, timeout_s=30) == "Completed"
    errors = farm.store.reports(retried, task_id=0, report_type=REPORT_ERROR)
    assert [(e.worker, e.text) for e in errors] == [("worker-01", "simulated failure on frame 1")]
    assert farm.store.task_json(retried, 0)["Errs"] == 1
    failed_log = farm.store.reports(retried, task_id=0, report_type=REPORT_LOG)[0].text
    assert "0: STDOUT: ERROR simulated failure on frame 1" in failed_log
    assert "0: ERROR: Traceback (most recent call last):" in failed_log
    assert sorted(ledger(output)) == [1, 2]
    assert len((output / "pids.txt").read_text().split()) == 2  # the failed attempt, then the retry
    assert not any(pid_alive(int(p)) for p in (output / "pids.txt").read_text().split())

    assert farm.wait_for_job(failing, timeout_s=30) == "Failed"  # the store's default: one error fails the task
    assert farm.store.report_data(failing, "allerrorcontents") == ["simulated failure on frame 5"]


def test_an_opted_in_event_plugin_runs_once_in_the_worker_that_finished_the_last_task(farm: Farm,
                                                                                     tmp_path: Path) -> None:
    install_sample(farm, tmp_path)
    source = tmp_path / "event" / "Announce"
    source.mkdir(parents=True)
    (source / "Announce.py").write_text(textwrap.dedent(EVENT), encoding="utf-8")
    (source / "Announce.param").write_text(EVENT_PARAM, encoding="utf-8")
    farm.install_event(source, "Announce")
    announced = tmp_path / "announced.txt"
    farm.configure_event("Announce", LogPath=str(announced))
    opted = submit(farm, tmp_path / "a", "1-6", 1, sleep_per_frame=0.05, job_info={"EventOptIns": "Announce"})
    plain = submit(farm, tmp_path / "b", "1-2", 1)
    farm.start_workers(2)

    assert farm.wait_for_job(opted, timeout_s=30) == "Completed"
    assert farm.wait_for_job(plain, timeout_s=30) == "Completed"
    wait_for(lambda: announced.is_file(), 10, "the event plugin", farm)
    time.sleep(0.5)  # a second (wrong) run would show up by now
    lines = announced.read_text().splitlines()
    assert len(lines) == 1
    job_id, pid = lines[0].split()
    assert job_id == opted
    last = max(farm.store.reports(opted, report_type=REPORT_LOG), key=lambda r: r.date)
    assert int(pid) == farm.worker_pid(last.worker)
    assert "Event Plugin Announce: INFO: announced frames 1-6" in farm.worker_log(last.worker)
    assert f"OnJobFinished for job {opted} ran event plugin(s) Announce" in farm.worker_log(last.worker)


def test_failing_the_job_cancels_the_task_and_kills_the_managed_process(farm: Farm, tmp_path: Path) -> None:
    install_sample(farm, tmp_path)
    output = tmp_path / "out"
    job_id = submit(farm, output, "1-3", 3, sleep_per_frame=30)
    farm.start_workers(1)
    wait_for(lambda: (output / "pids.txt").is_file(), 20, "the writer", farm)
    writer = int((output / "pids.txt").read_text().split()[0])
    assert pid_alive(writer)

    farm.store.job_command({"Command": "fail", "JobID": job_id})
    marker = output / "canceled-0.txt"
    wait_for(lambda: marker.is_file() and marker.read_text() == "IsCanceled=True", 15, "the cancel", farm)
    wait_for(lambda: not pid_alive(writer), 10, "the writer to die", farm)
    wait_for(lambda: f"task 0 of job {job_id} canceled" in farm.worker_log("worker-01"), 10, "the log", farm)
    assert farm.store.job_status_text(job_id) == "Failed"
    assert farm.store.reports(job_id, report_type=REPORT_ERROR) == []
    assert "Deadline canceled the task: killing the process tree of Writer" in farm.worker_log("worker-01")


def test_stopping_a_worker_gives_its_task_back_and_leaves_nothing_behind(farm: Farm, tmp_path: Path) -> None:
    install_sample(farm, tmp_path)
    output = tmp_path / "out"
    job_id = submit(farm, output, "1-2", 2, sleep_per_frame=30)
    farm.start_workers(1)
    wait_for(lambda: (output / "pids.txt").is_file(), 20, "the writer", farm)
    writer = int((output / "pids.txt").read_text().split()[0])

    farm.stop_workers()

    assert not pid_alive(writer)
    assert farm.leaked_processes == []
    requeue = farm.store.reports(job_id, report_type=REPORT_REQUEUE)
    assert [r.text for r in requeue] == ["Worker worker-01 was shut down while rendering the task (received SIGTERM)"]
    assert farm.store.job_status_text(job_id) == "Queued"
    log_text = farm.worker_log("worker-01")
    assert log_text.index("0: INFO: EndJob (the Worker is shutting down)") < log_text.index("Worker worker-01 stopped")


def test_configure_plugin_checks_values_against_the_param_file(farm: Farm, tmp_path: Path) -> None:
    source = tmp_path / "configured" / "Configured"
    source.mkdir(parents=True)
    (source / "Configured.py").write_text("def GetDeadlinePlugin():\n    return None\n", encoding="utf-8")
    (source / "Configured.param").write_text(
        "[Port]\nType=integer\nMinimum=1024\nMaximum=65000\nDefault=8188\n\n"
        "[Mode]\nType=enum\nItems=Warn;Fail\nDefault=Warn\n\n[Paths]\nType=multilinemultifilename\nDefault=\n",
        encoding="utf-8")
    farm.install_plugin(source, "Configured")
    farm.configure_plugin("Configured", Port=9000, Mode="Fail", Paths=["/a/python", "/b/python"])
    settings = (farm.repository / "settings" / "plugins" / "Configured.json").read_text()
    assert '"Port": "9000"' in settings and '"Paths": "/a/python;/b/python"' in settings
    with pytest.raises(FarmError, match="Configured Port is 80, outside Port's Minimum 1024"):
        farm.configure_plugin("Configured", Port=80)
    with pytest.raises(FarmError, match="Configured Mode must be one of Warn, Fail, not 'Maybe'"):
        farm.configure_plugin("Configured", Mode="Maybe")
    with pytest.raises(FarmError, match="Configured.param has no entry 'Prot'"):
        farm.configure_plugin("Configured", Prot=9000)


def test_an_idle_worker_exits_and_its_processes_do_not_see_the_emulators_import_path(farm: Farm,
                                                                                     tmp_path: Path) -> None:
    install_sample(farm, tmp_path)
    output = tmp_path / "out"
    job_id = submit(farm, output, "7", 1)
    farm.start_workers(1, gpus_per_worker=0, exit_when_idle_s=0.5)
    worker = farm.workers["worker-01"]

    assert farm.wait_for_job(job_id, timeout_s=20) == "Completed"
    wait_for(lambda: worker.popen.poll() is not None, 20, "the idle Worker to exit", farm)
    assert worker.popen.returncode == 0
    assert "Worker worker-01 stopping: idle for 0.5 s" in farm.worker_log("worker-01")
    assert (output / "frame.0007.txt").read_text() == "worker-01 gpus=\n"  # no GPU affinity override
    assert str(REPO_ROOT) not in (output / "pythonpath.txt").read_text().split(os.pathsep)


def test_workers_run_in_a_workers_environment_behind_a_proxy_that_refuses_loopback(farm: Farm,
                                                                                 tmp_path: Path) -> None:
    """tests/doubles/deadline_runtime/worker_environment.py: Deadline's library folder leads LD_LIBRARY_PATH
    and the studio proxy (where nothing listens) does not exempt loopback; the Worker itself is not hurt."""
    install_sample(farm, tmp_path)
    output = tmp_path / "out"
    job_id = submit(farm, output, "3", 1)
    farm.start_workers(1)

    assert farm.wait_for_job(job_id, timeout_s=20) == "Completed"
    seen = json.loads((output / "environment.json").read_text())
    assert seen["LD_LIBRARY_PATH"].split(os.pathsep)[:2] == [str(deadline_library_folder(farm.machine)),
                                                             STUDIO_LIBRARY_FOLDER]
    assert seen["http_proxy"] == seen["HTTPS_PROXY"] == farm.proxy_url
    assert seen["no_proxy"] == STUDIO_NO_PROXY
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": farm.proxy_url}))
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        opener.open(f"{farm.url}/", timeout=5)
    assert "Process started: pid " in farm.worker_log("worker-01")
    assert "(UseProcessTree True, TerminateOnExit True)" in farm.worker_log("worker-01")


def test_a_dependent_job_renders_only_once_its_dependency_ended_as_its_flags_accept(farm: Farm,
                                                                                     tmp_path: Path) -> None:
    """JobInfo ``JobDependencies`` with ``ResumeOn{Complete,Failed,Deleted}Dependencies`` (DOC 10.1
    manual-submission; the defaults true, false, false): Workers take nothing of a job until Deadline releases
    it, and a job whose dependency ended in a state its flags do not accept stays Pending."""
    install_sample(farm, tmp_path)
    first = submit(farm, tmp_path / "first", "1-2", 1, sleep_per_frame=30)
    after_failure = submit(farm, tmp_path / "after_failure", "1", 1,
                           job_info={"JobDependencies": first, "ResumeOnFailedDependencies": "true"})
    after_completion = submit(farm, tmp_path / "after_completion", "1", 1, job_info={"JobDependencies": first})
    deleted = submit(farm, tmp_path / "deleted", "1", 1, sleep_per_frame=30)
    after_deletion = submit(farm, tmp_path / "after_deletion", "1", 1,
                            job_info={"JobDependencies": deleted, "ResumeOnDeletedDependencies": "true"})
    farm.start_workers(3)
    wait_for(lambda: rendering_on(farm, first, 0) and rendering_on(farm, deleted, 0), 20, "both renders", farm)
    time.sleep(1.0)  # idle Workers poll meanwhile: nothing of the waiting jobs is handed out
    assert [farm.store.job_status_text(j) for j in (after_failure, after_completion, after_deletion)] == [
        "Pending"] * 3
    farm.store.job_command({"Command": "fail", "JobID": first})
    farm.store.delete_jobs([deleted])
    assert farm.wait_for_job(after_failure, timeout_s=30) == "Completed"
    assert farm.wait_for_job(after_deletion, timeout_s=30) == "Completed"
    assert ledger(tmp_path / "after_failure") == [1] and ledger(tmp_path / "after_deletion") == [1]
    assert farm.store.job_status_text(after_completion) == "Pending" and ledger(tmp_path / "after_completion") == []
