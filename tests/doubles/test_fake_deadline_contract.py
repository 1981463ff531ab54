"""Contract tests: the Deadline Web Service double against shared/reference/deadline.md.

Plain ``requests`` against the running double (no product code), plus the in-process store API the farm
emulator will drive. Where deadline.md is silent, these tests pin the double's documented guesses
(tests/doubles/deadline/harness.py) so that a change to them is deliberate.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests

from tests.doubles.deadline.framelist import FrameListError, parse_frame_list
from tests.doubles.deadline.harness import FakeDeadline
from tests.doubles.deadline.store import (
    JOB_ACTIVE,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_SUSPENDED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_PENDING,
    TASK_QUEUED,
    TASK_RENDERING,
    TASK_SUSPENDED,
    TaskNotRenderingError,
)

TIMEOUT_S = 10
DEADLINE_EXCEPTION = "An exception occurred within the Deadline code"


# ---------------------------------------------------------------------------------------------------------
# helpers


def submit(fake: FakeDeadline, job_info: Dict[str, Any], plugin_info: Optional[Dict[str, Any]] = None,
           aux: Optional[List[str]] = None, **extra: Any) -> requests.Response:
    body: Dict[str, Any] = {"JobInfo": job_info, "PluginInfo": plugin_info or {}, "AuxFiles": aux or []}
    body.update(extra)
    return requests.post(f"{fake.url}/api/jobs", json=body, timeout=TIMEOUT_S)


def submit_ok(fake: FakeDeadline, **job_info: Any) -> Dict[str, Any]:
    job_info.setdefault("Plugin", "ComfyUI")
    r = submit(fake, job_info)
    assert r.status_code == 200, r.text
    return r.json()


def get_job(fake: FakeDeadline, job_id: str) -> Dict[str, Any]:
    r = requests.get(f"{fake.url}/api/jobs", params={"JobID": job_id}, timeout=TIMEOUT_S)
    assert r.status_code == 200, r.text
    jobs = r.json()
    assert isinstance(jobs, list) and len(jobs) == 1
    return jobs[0]


def put_job(fake: FakeDeadline, command: str, job_id: str, **extra: Any) -> requests.Response:
    return requests.put(f"{fake.url}/api/jobs", json={"Command": command, "JobID": job_id, **extra},
                        timeout=TIMEOUT_S)


def tasks(fake: FakeDeadline, job_id: str) -> List[Dict[str, Any]]:
    r = requests.get(f"{fake.url}/api/tasks", params={"JobID": job_id}, timeout=TIMEOUT_S)
    assert r.status_code == 200, r.text
    return r.json()["Tasks"]


def status_text(fake: FakeDeadline, job_id: str) -> str:
    r = requests.get(f"{fake.url}/api/jobs", params={"JobID": job_id, "Details": "true"}, timeout=TIMEOUT_S)
    assert r.status_code == 200, r.text
    return r.json()[job_id]["Job"]["Status"]


def assert_text_error(r: requests.Response, status: int, contains: str = "") -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("text/plain")
    assert contains in r.text


# ---------------------------------------------------------------------------------------------------------
# manners: banner, auth, errors


def test_banner_is_plain_text(fake_deadline: FakeDeadline) -> None:
    r = requests.get(fake_deadline.url + "/", timeout=TIMEOUT_S)
    assert r.status_code == 200
    assert r.text == "This is the Deadline web service!"
    assert r.headers["Content-Type"].startswith("text/plain")


def test_basic_auth_challenges_then_accepts(fake_deadline_factory) -> None:
    fake = fake_deadline_factory(users={"artist": "s3cret"})
    for auth in (None, ("artist", "wrong"), ("nobody", "s3cret")):
        r = requests.get(f"{fake.url}/api/pools", auth=auth, timeout=TIMEOUT_S)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Basic realm="Deadline"'
        assert r.text and r.headers["Content-Type"].startswith("text/plain")
    r = requests.get(f"{fake.url}/api/pools", auth=("artist", "s3cret"), timeout=TIMEOUT_S)
    assert r.status_code == 200 and r.json() == ["none"]
    r = requests.post(f"{fake.url}/api/jobs", json={"JobInfo": {"Plugin": "ComfyUI"}, "PluginInfo": {}},
                      timeout=TIMEOUT_S)
    assert r.status_code == 401
    assert fake.submissions() == []


def test_no_auth_without_users(fake_deadline: FakeDeadline) -> None:
    assert requests.get(f"{fake_deadline.url}/api/jobs", timeout=TIMEOUT_S).json() == []


def test_bad_bodies_are_400_text(fake_deadline: FakeDeadline) -> None:
    url = f"{fake_deadline.url}/api/jobs"
    assert_text_error(requests.put(url, timeout=TIMEOUT_S), 400)
    assert_text_error(requests.put(url, data=b"{not json", timeout=TIMEOUT_S), 400)
    assert_text_error(requests.put(url, json={"JobID": "x"}, timeout=TIMEOUT_S), 400, "Command")
    assert_text_error(requests.post(url, json=[1, 2], timeout=TIMEOUT_S), 400)
    assert_text_error(requests.post(url, json={"PluginInfo": {}}, timeout=TIMEOUT_S), 400, "JobInfo")


def test_invalid_command_and_unknown_job_are_500_text(fake_deadline: FakeDeadline) -> None:
    job = submit_ok(fake_deadline)
    assert_text_error(put_job(fake_deadline, "explode", job["_id"]), 500, DEADLINE_EXCEPTION)
    assert_text_error(put_job(fake_deadline, "Suspend", job["_id"]), 500, DEADLINE_EXCEPTION)
    assert_text_error(put_job(fake_deadline, "suspend", "0" * 24), 500, DEADLINE_EXCEPTION)
    r = requests.delete(f"{fake_deadline.url}/api/jobs", params={"JobID": "f" * 24}, timeout=TIMEOUT_S)
    assert_text_error(r, 500, DEADLINE_EXCEPTION)
    assert get_job(fake_deadline, job["_id"])["Stat"] == JOB_ACTIVE


# ---------------------------------------------------------------------------------------------------------
# submission


def test_submit_returns_the_job_object_or_only_its_id(fake_deadline: FakeDeadline) -> None:
    job_info = {"Plugin": "ComfyUI", "Name": "shot010 key", "Frames": "1001-1010", "ChunkSize": "5",
                "Priority": 75}
    plugin_info = {"JobRecord": "/mnt/jobs/j1/job.json", "GPUsPerTask": 1, "Verbose": True}
    r = submit(fake_deadline, job_info, plugin_info)
    assert r.status_code == 200
    job = r.json()
    assert re.fullmatch(r"[0-9a-f]{24}", job["_id"])
    assert job["Plug"] == "ComfyUI" and job["Stat"] == JOB_ACTIVE
    assert job["Props"]["Name"] == "shot010 key" and job["Props"]["Pri"] == 75 and job["Props"]["Chunk"] == 5
    assert job["Props"]["PlugInfo"] == {"JobRecord": "/mnt/jobs/j1/job.json", "GPUsPerTask": "1", "Verbose": "True"}
    assert job["Date"].endswith("Z") and job["Date"] != "0001-01-01T00:00:00Z"
    assert job["DateStart"] == "0001-01-01T00:00:00Z" and job["DateComp"] == "0001-01-01T00:00:00Z"
    assert (job["QueuedChunks"], job["CompletedChunks"], job["RenderingChunks"]) == (2, 0, 0)
    assert (job["SuspendedChunks"], job["FailedChunks"], job["PendingChunks"]) == (0, 0, 0)
    assert job["SnglTskPrg"] == "0 %" and job["Errs"] == 0 and job["Props"]["Tasks"] == 2

    r = submit(fake_deadline, {"Plugin": "ComfyUI"}, IdOnly=True)
    assert r.status_code == 200
    assert set(r.json()) == {"_id"}
    second = r.json()["_id"]
    assert second != job["_id"]

    assert fake_deadline.submissions() == [
        {"job_id": job["_id"], "JobInfo": job_info, "PluginInfo": plugin_info, "AuxFiles": []},
        {"job_id": second, "JobInfo": {"Plugin": "ComfyUI"}, "PluginInfo": {}, "AuxFiles": []},
    ]


def test_a_batch_answers_success_and_no_ids(fake_deadline: FakeDeadline) -> None:
    """DR ``api/python/Deadline/Jobs.py``, ``SubmitJobs``: "Returns: Success message." (``SubmitJob``: "Returns:
    The new Job."): a client that reads ids out of a batch answer gets none."""
    body = {"Jobs": [{"JobInfo": {"Plugin": "ComfyUI", "Name": "render"}, "PluginInfo": {}, "AuxFiles": []},
                     {"JobInfo": {"Plugin": "Python", "Name": "publish"}, "PluginInfo": {}, "AuxFiles": [],
                      "DependsOnPrevious": "true"}],
            "Dependent": "false"}
    r = requests.post(f"{fake_deadline.url}/api/jobs", json=body, timeout=TIMEOUT_S)
    assert (r.status_code, r.text) == (200, "Success")
    assert r.headers["Content-Type"].startswith("text/plain")
    first, second = fake_deadline.store.jobs_json()  # in submission order
    assert [d["JobID"] for d in second["Props"]["Dep"]] == [first["_id"]]  # DependsOnPrevious: on the one before
    assert first["Props"]["Dep"] == []
    assert second["Stat"] == JOB_PENDING and second["PendingChunks"] == 1
    assert status_text(fake_deadline, second["_id"]) == "Pending"
    assert put_job(fake_deadline, "complete", first["_id"]).text == "Success"
    assert get_job(fake_deadline, second["_id"])["Stat"] == JOB_ACTIVE
    assert [t["Stat"] for t in tasks(fake_deadline, second["_id"])] == [TASK_QUEUED]


def test_dependent_true_chains_every_job_of_the_batch(fake_deadline: FakeDeadline) -> None:
    """``SubmitJobs(jobs, dependent)``: "dependent: True to make each Job submitted dependent on the previous
    (except for the first one)" (DR ``Deadline/Jobs.py``): two clips' preview and main jobs form one chain,
    whatever each entry's ``DependsOnPrevious`` says."""
    names = ["a preview", "a main", "b preview", "b main"]
    body = {"Jobs": [{"JobInfo": {"Plugin": "ComfyUI", "Name": name}, "PluginInfo": {}, "AuxFiles": [],
                      "DependsOnPrevious": name.endswith("main")} for name in names],
            "Dependent": "true"}
    r = requests.post(f"{fake_deadline.url}/api/jobs", json=body, timeout=TIMEOUT_S)
    assert (r.status_code, r.text) == (200, "Success")
    jobs = fake_deadline.store.jobs_json()
    assert [j["Props"]["Name"] for j in jobs] == names
    assert [[d["JobID"] for d in j["Props"]["Dep"]] for j in jobs] == [[]] + [[j["_id"]] for j in jobs[:-1]]
    assert [j["Stat"] for j in jobs] == [JOB_ACTIVE, JOB_PENDING, JOB_PENDING, JOB_PENDING]


@pytest.mark.parametrize(("flags", "ending", "released"), [
    ({}, "complete", True),
    ({"ResumeOnCompleteDependencies": "false"}, "complete", False),
    ({}, "fail", False),
    ({"ResumeOnFailedDependencies": "true"}, "fail", True),
    ({}, "delete", False),
    ({"ResumeOnDeletedDependencies": "true"}, "delete", True),
    ({"ResumeOnCompleteDependencies": "true", "ResumeOnFailedDependencies": "true",
      "ResumeOnDeletedDependencies": "true"}, "delete", True),
])
def test_a_dependent_job_waits_until_its_dependency_ends_as_its_flags_accept(
        fake_deadline: FakeDeadline, flags: Dict[str, str], ending: str, released: bool) -> None:
    """JobInfo ``JobDependencies`` with ``ResumeOnCompleteDependencies`` (default true),
    ``ResumeOnFailedDependencies`` and ``ResumeOnDeletedDependencies`` (default false): DOC 10.1
    manual-submission, as OP's ``DeadlineJobInfo`` lists them; DR ``scripts/Jobs/BatchResubmit.py`` writes the
    same keys from a Job's ``JobResumeOn...Dependencies``."""
    first = submit_ok(fake_deadline)["_id"]
    second = submit_ok(fake_deadline, JobDependencies=first, **flags)["_id"]
    assert get_job(fake_deadline, second)["Stat"] == JOB_PENDING
    if ending == "delete":
        r = requests.delete(f"{fake_deadline.url}/api/jobs", params={"JobID": first}, timeout=TIMEOUT_S)
    else:
        r = put_job(fake_deadline, ending, first)
    assert r.text == "Success"
    assert get_job(fake_deadline, second)["Stat"] == (JOB_ACTIVE if released else JOB_PENDING)


def test_batch_is_all_or_nothing(fake_deadline: FakeDeadline) -> None:
    body = {"Jobs": [{"JobInfo": {"Plugin": "ComfyUI"}, "PluginInfo": {}},
                     {"JobInfo": {"Name": "no plugin"}, "PluginInfo": {}}], "Dependent": "false"}
    r = requests.post(f"{fake_deadline.url}/api/jobs", json=body, timeout=TIMEOUT_S)
    assert_text_error(r, 500, "Plugin")
    assert fake_deadline.submissions() == [] and fake_deadline.store.job_ids() == []


def test_job_info_without_plugin_is_refused(fake_deadline: FakeDeadline) -> None:
    assert_text_error(submit(fake_deadline, {"Name": "x", "Frames": "1-10"}), 500, "Plugin")
    assert fake_deadline.submissions() == []


@pytest.mark.parametrize("job_info, message", [
    ({"Frames": "1-10x0"}, "Frames"),
    ({"Frames": "one-ten"}, "Frames"),
    ({"Frames": "1,,2"}, "Frames"),
    ({"Priority": "high"}, "Priority"),
    ({"Priority": 101}, "Priority"),
    ({"ChunkSize": 0}, "ChunkSize"),
    ({"Pool": "ghost"}, "pool"),
    ({"Group": "gpu_96gb"}, "group"),
    ({"OnJobComplete": "nothing"}, "OnJobComplete"),
    ({"InitialStatus": "Paused"}, "InitialStatus"),
    ({"Prority": 60}, "Prority"),
    ({"Comment": {"nested": 1}}, "Comment"),
    ({"OutputFilename0": "a.####.exr", "OutputFilename2": "b.####.exr"}, "OutputFilename"),
    ({"EnvironmentKeyValue0": "NOEQUALS"}, "EnvironmentKeyValue0"),
    ({"JobDependencies": "0123456789abcdef01234567"}, "does not exist"),
    ({"Whitelist": "a", "Blacklist": "b"}, "machine list"),
])
def test_bad_job_info_is_refused(fake_deadline: FakeDeadline, job_info: Dict[str, Any], message: str) -> None:
    r = submit(fake_deadline, {"Plugin": "ComfyUI", **job_info})
    assert_text_error(r, 500, message)
    assert fake_deadline.submissions() == []


def test_aux_files_must_exist_on_the_web_service_machine(fake_deadline: FakeDeadline, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "job.json")
    r = submit(fake_deadline, {"Plugin": "ComfyUI"}, aux=[missing])
    assert_text_error(r, 500, f"the auxiliary file {missing!r} does not exist on the Web Service machine")
    assert fake_deadline.submissions() == []

    record = tmp_path / "job.json"
    record.write_text('{"schema": 1}', encoding="utf-8")
    job = submit(fake_deadline, {"Plugin": "ComfyUI"}, aux=[str(record)]).json()
    assert job["Aux"] == ["job.json"]
    record.write_text("changed after submission", encoding="utf-8")
    copied = fake_deadline.store.aux_dir(job["_id"]) / "job.json"
    assert copied.read_text(encoding="utf-8") == '{"schema": 1}'
    assert fake_deadline.submissions()[0]["AuxFiles"] == [str(record)]


def test_props_map_every_job_info_key(fake_deadline: FakeDeadline) -> None:
    dep = submit_ok(fake_deadline)["_id"]
    job_info = {
        "Plugin": "ComfyUI", "Name": "sh010_depth", "BatchName": "sh010", "UserName": "alice",
        "Comment": "depth pass", "Department": "comp", "Frames": "1001-1100", "ChunkSize": 10,
        "Group": "gpu_24gb", "Pool": "gpu", "SecondaryPool": "cpu", "Priority": "80", "ConcurrentTasks": 2,
        "LimitGroups": "comfy_license, nas", "Whitelist": "gpu01,gpu02", "MachineLimit": "3",
        "JobDependencies": dep, "OnJobComplete": "Delete", "TaskTimeoutMinutes": 30, "OnTaskTimeout": "Requeue",
        "EventOptIns": "ComfyUIRelink, Slack", "EnvironmentKeyValue0": "OCIO=/cfg/config.ocio",
        "EnvironmentKeyValue1": "COMFY_MODE=farm=1", "OutputDirectory0": "/mnt/jobs/j1/output",
        "OutputFilename0": "sh010_depth.####.exr", "ExtraInfoKeyValue0": "flame_clip=sh010",
        "ExtraInfoKeyValue1": "workflow=depth", "ForceReloadPlugin": "false", "SuppressEvents": False,
        "OverrideTaskFailureDetection": True, "FailureDetectionTaskErrors": 3,
        **{f"ExtraInfo{i}": f"extra {i}" for i in range(10)},
    }
    job = submit(fake_deadline, job_info).json()
    props = job["Props"]
    expected = {
        "Name": "sh010_depth", "Batch": "sh010", "User": "alice", "Cmmt": "depth pass", "Dept": "comp",
        "Frames": "1001-1100", "Chunk": 10, "Tasks": 10, "Grp": "gpu_24gb", "Pool": "gpu", "SecPool": "cpu",
        "Pri": 80, "Conc": 2, "Limits": ["comfy_license", "nas"], "ListedSlaves": ["gpu01", "gpu02"],
        "White": True, "MachLmt": 3, "OnComp": 1, "MaxTime": 1800, "Timeout": 5,
        "EventOI": ["ComfyUIRelink", "Slack"], "Env": {"OCIO": "/cfg/config.ocio", "COMFY_MODE": "farm=1"},
        "ExDic": {"flame_clip": "sh010", "workflow": "depth"}, "Reload": False, "NoEvnt": False,
        "TskFailOvr": True, "TskFailErr": 3, "PlugInfo": {},
        **{f"Ex{i}": f"extra {i}" for i in range(10)},
    }
    assert {key: props[key] for key in expected} == expected
    assert [d["JobID"] for d in props["Dep"]] == [dep]
    assert job["OutDir"] == ["/mnt/jobs/j1/output"] and job["OutFile"] == ["sh010_depth.####.exr"]
    assert job["Stat"] == JOB_PENDING  # its dependency is still active

    defaults = submit_ok(fake_deadline)["Props"]
    assert (defaults["Name"], defaults["Grp"], defaults["Pool"], defaults["Pri"]) == ("Untitled", "none", "none", 50)
    assert (defaults["OnComp"], defaults["Chunk"], defaults["Frames"], defaults["Conc"]) == (2, 1, "0", 1)
    assert defaults["White"] is False and defaults["ListedSlaves"] == [] and defaults["EventOI"] == []


def test_blacklist_and_initial_status_suspended(fake_deadline: FakeDeadline) -> None:
    job = submit_ok(fake_deadline, Blacklist="gpu03", InitialStatus="Suspended", Frames="1-4", ChunkSize=2)
    assert job["Props"]["White"] is False and job["Props"]["ListedSlaves"] == ["gpu03"]
    assert job["Stat"] == JOB_SUSPENDED and job["SuspendedChunks"] == 2
    assert status_text(fake_deadline, job["_id"]) == "Suspended"


# ---------------------------------------------------------------------------------------------------------
# queries


def test_get_jobs_filters(fake_deadline: FakeDeadline) -> None:
    a = submit_ok(fake_deadline)["_id"]
    b = submit_ok(fake_deadline, InitialStatus="Suspended")["_id"]
    url = f"{fake_deadline.url}/api/jobs"
    assert [j["_id"] for j in requests.get(url, timeout=TIMEOUT_S).json()] == [a, b]
    assert requests.get(url, params={"IdOnly": "true"}, timeout=TIMEOUT_S).json() == [a, b]
    assert requests.get(url, params={"States": "Suspended", "IdOnly": "true"}, timeout=TIMEOUT_S).json() == [b]
    r = requests.get(url, params={"States": "Active,Suspended", "IdOnly": "true"}, timeout=TIMEOUT_S)
    assert r.json() == [a, b]
    one = requests.get(url, params={"JobID": a}, timeout=TIMEOUT_S).json()
    assert isinstance(one, list) and [j["_id"] for j in one] == [a]
    both = requests.get(url, params={"JobID": f"{b},{a}"}, timeout=TIMEOUT_S).json()
    assert [j["_id"] for j in both] == [b, a]
    assert requests.get(url, params={"JobID": "0" * 24}, timeout=TIMEOUT_S).json() == []
    assert requests.get(url, params={"JobID": "0" * 24, "Details": "true"}, timeout=TIMEOUT_S).json() == {}
    assert_text_error(requests.get(url, params={"States": "Sleeping"}, timeout=TIMEOUT_S), 400)


def test_details_status_follows_the_job(fake_deadline: FakeDeadline) -> None:
    job_id = submit_ok(fake_deadline, Frames="1-3", ChunkSize=1, ConcurrentTasks=2)["_id"]
    assert status_text(fake_deadline, job_id) == "Queued"
    store = fake_deadline.store
    first = store.dequeue_task("gpu01")
    second = store.dequeue_task("gpu01")
    assert first is not None and second is not None
    assert status_text(fake_deadline, job_id) == "Rendering (2)"
    assert get_job(fake_deadline, job_id)["RenderingChunks"] == 2
    store.complete_task(job_id, first.task_id, "ok")
    assert status_text(fake_deadline, job_id) == "Rendering (1)"
    assert put_job(fake_deadline, "suspend", job_id).text == "Success"
    assert status_text(fake_deadline, job_id) == "Suspended"
    assert put_job(fake_deadline, "fail", job_id).text == "Success"
    assert status_text(fake_deadline, job_id) == "Failed"
    assert put_job(fake_deadline, "complete", job_id).text == "Success"
    assert status_text(fake_deadline, job_id) == "Completed"


# ---------------------------------------------------------------------------------------------------------
# tasks


@pytest.mark.parametrize("frames, chunk, expected", [
    ("1-10", 3, ["1-3", "4-6", "7-9", "10-10"]),
    ("21", 1, ["21-21"]),
    ("5,10,15", 2, ["5-10", "15-15"]),
    ("5 10 15", 1, ["5-5", "10-10", "15-15"]),
    ("1:6", 4, ["1-4", "5-6"]),
    ("1-100x25", 1, ["1-1", "26-26", "51-51", "76-76"]),
    ("1:10:3", 2, ["1-4", "7-10"]),
    ("1-10step5", 1, ["1-1", "6-6"]),
    ("1-10by5", 2, ["1-6"]),
    ("1-10every5", 1, ["1-1", "6-6"]),
    ("10-1", 4, ["10-7", "6-3", "2-1"]),
    ("100-1x30", 2, ["100-70", "40-10"]),
    ("-3-2", 3, ["-3--1", "0-2"]),
    ("-10--8", 5, ["-10--8"]),
    ("1-5,3-7", 5, ["1-5", "6-7"]),
    ("1001-1100", 100, ["1001-1100"]),
])
def test_tasks_split_by_chunk(fake_deadline: FakeDeadline, frames: str, chunk: int, expected: List[str]) -> None:
    job = submit_ok(fake_deadline, Frames=frames, ChunkSize=chunk)
    assert [t["Frames"] for t in tasks(fake_deadline, job["_id"])] == expected
    assert job["Props"]["Tasks"] == len(expected)


def test_stepped_task_keeps_its_own_frames(fake_deadline: FakeDeadline) -> None:
    job_id = submit_ok(fake_deadline, Frames="1-20x5", ChunkSize=2)["_id"]
    assert [t["Frames"] for t in tasks(fake_deadline, job_id)] == ["1-6", "11-16"]
    assert fake_deadline.store.task_frames(job_id, 0) == [1, 6]
    assert fake_deadline.store.task_frames(job_id, 1) == [11, 16]
    lease = fake_deadline.store.dequeue_task("gpu01")
    assert lease is not None and lease.frames == (1, 6) and (lease.start_frame, lease.end_frame) == (1, 6)


@pytest.mark.parametrize("text", ["", "  ", "1,,2", "1,", "1-10x0", "abc", "1:10x2", "1-10X2", "+5", "1-2-3",
                                  "99999999999"])
def test_frame_list_parser_is_strict(text: str) -> None:
    with pytest.raises(FrameListError):
        parse_frame_list(text)


def test_frame_list_parser_drops_duplicates_in_order() -> None:
    assert parse_frame_list("10-8, 9-12 , 8") == [10, 9, 8, 11, 12]


def test_task_queries(fake_deadline: FakeDeadline) -> None:
    job_id = submit_ok(fake_deadline, Frames="1-4", ChunkSize=2)["_id"]
    url = f"{fake_deadline.url}/api/tasks"
    assert requests.get(url, params={"JobID": job_id, "IdOnly": "true"}, timeout=TIMEOUT_S).json() == [0, 1]
    wrapper = requests.get(url, params={"JobID": job_id}, timeout=TIMEOUT_S).json()
    assert set(wrapper) == {"ID", "PreTask", "Tasks", "PostTask"}
    assert wrapper["ID"] == job_id and wrapper["PreTask"] is None and wrapper["PostTask"] is None
    task = requests.get(url, params={"JobID": job_id, "TaskID": "1"}, timeout=TIMEOUT_S).json()
    assert {"JobID", "TaskID", "Frames", "Slave", "Stat", "Prog", "RndStat", "Errs", "Start", "StartRen",
            "Comp", "_id"} <= set(task)
    assert (task["JobID"], task["TaskID"], task["Frames"], task["_id"]) == (job_id, 1, "3-4", f"{job_id}_1")
    assert (task["Stat"], task["Prog"], task["Slave"], task["Errs"]) == (TASK_QUEUED, "0 %", "", 0)
    assert task["Start"] == "0001-01-01T00:00:00Z"
    assert_text_error(requests.get(url, params={"JobID": job_id, "TaskID": "one"}, timeout=TIMEOUT_S), 400)
    assert_text_error(requests.get(url, params={"JobID": job_id, "TaskID": "7"}, timeout=TIMEOUT_S), 500)


def test_tasks_of_unknown_job_are_500(fake_deadline: FakeDeadline) -> None:
    r = requests.get(f"{fake_deadline.url}/api/tasks", params={"JobID": "0" * 24}, timeout=TIMEOUT_S)
    assert_text_error(r, 500, DEADLINE_EXCEPTION)


def test_post_and_delete_on_tasks_are_501(fake_deadline: FakeDeadline) -> None:
    url = f"{fake_deadline.url}/api/tasks"
    assert_text_error(requests.post(url, json={"JobID": "x"}, timeout=TIMEOUT_S), 501)
    assert_text_error(requests.delete(url, params={"JobID": "x"}, timeout=TIMEOUT_S), 501)


def test_task_commands_with_task_list(fake_deadline: FakeDeadline) -> None:
    job_id = submit_ok(fake_deadline, Frames="1-4", ChunkSize=1)["_id"]
    url = f"{fake_deadline.url}/api/tasks"
    r = requests.put(url, json={"Command": "suspend", "JobID": job_id, "TaskList": [1, 3]}, timeout=TIMEOUT_S)
    assert r.status_code == 200 and r.text == "Success"
    assert [t["Stat"] for t in tasks(fake_deadline, job_id)] == [TASK_QUEUED, TASK_SUSPENDED, TASK_QUEUED,
                                                                 TASK_SUSPENDED]
    r = requests.put(url, json={"Command": "complete", "JobID": job_id}, timeout=TIMEOUT_S)
    assert r.text == "Success"
    assert get_job(fake_deadline, job_id)["Stat"] == JOB_COMPLETED
    r = requests.put(url, json={"Command": "requeue", "JobID": job_id, "TaskList": [2]}, timeout=TIMEOUT_S)
    assert r.text == "Success"
    job = get_job(fake_deadline, job_id)
    assert (job["Stat"], job["QueuedChunks"], job["CompletedChunks"]) == (JOB_ACTIVE, 1, 3)
    assert job["DateComp"] == "0001-01-01T00:00:00Z"
    assert_text_error(requests.put(url, json={"Command": "explode", "JobID": job_id}, timeout=TIMEOUT_S), 500)
    r = requests.put(url, json={"Command": "fail", "JobID": job_id, "TaskList": ["2"]}, timeout=TIMEOUT_S)
    assert_text_error(r, 400)


# ---------------------------------------------------------------------------------------------------------
# job commands


def test_job_commands_answer_success_and_change_state(fake_deadline: FakeDeadline) -> None:
    job_id = submit_ok(fake_deadline, Frames="1-4", ChunkSize=2)["_id"]
    steps = [("suspend", JOB_SUSPENDED, TASK_SUSPENDED), ("resume", JOB_ACTIVE, TASK_QUEUED),
             ("fail", JOB_FAILED, TASK_FAILED), ("resumefailed", JOB_ACTIVE, TASK_QUEUED),
             ("pend", JOB_PENDING, TASK_PENDING), ("releasepending", JOB_ACTIVE, TASK_QUEUED),
             ("complete", JOB_COMPLETED, TASK_COMPLETED), ("requeue", JOB_ACTIVE, TASK_QUEUED)]
    for command, job_stat, task_stat in steps:
        r = put_job(fake_deadline, command, job_id)
        assert (r.status_code, r.text) == (200, "Success"), command
        assert get_job(fake_deadline, job_id)["Stat"] == job_stat, command
        assert {t["Stat"] for t in tasks(fake_deadline, job_id)} == {task_stat}, command


def test_set_frame_range_and_machine_limit(fake_deadline: FakeDeadline) -> None:
    job_id = submit_ok(fake_deadline, Frames="1-4", ChunkSize=2)["_id"]
    r = put_job(fake_deadline, "setjobframerange", job_id, FrameList="10-20x5", ChunkSize=1)
    assert r.text == "Success"
    assert [t["Frames"] for t in tasks(fake_deadline, job_id)] == ["10-10", "15-15", "20-20"]
    job = get_job(fake_deadline, job_id)
    assert (job["Props"]["Frames"], job["Props"]["Chunk"], job["Props"]["Tasks"]) == ("10-20x5", 1, 3)
    assert_text_error(put_job(fake_deadline, "setjobframerange", job_id, FrameList="x", ChunkSize=1), 500)
    r = put_job(fake_deadline, "setjobmachinelimit", job_id, Limit=2, SlaveList=["gpu01"], WhiteListFlag=True)
    assert r.text == "Success"
    props = get_job(fake_deadline, job_id)["Props"]
    assert (props["MachLmt"], props["ListedSlaves"], props["White"]) == (2, ["gpu01"], True)


def test_save_updates_props(fake_deadline: FakeDeadline) -> None:
    job = submit_ok(fake_deadline, Name="before")
    job["Props"]["Name"] = "after"
    job["Props"]["Pri"] = 90
    r = requests.put(f"{fake_deadline.url}/api/jobs", json={"Command": "save", "Job": job}, timeout=TIMEOUT_S)
    assert r.text == "Success"
    props = get_job(fake_deadline, job["_id"])["Props"]
    assert (props["Name"], props["Pri"]) == ("after", 90)
    job["Props"]["Pri"] = "high"
    r = requests.put(f"{fake_deadline.url}/api/jobs", json={"Command": "save", "Job": job}, timeout=TIMEOUT_S)
    assert_text_error(r, 500, "Pri")


def test_delete_archive_and_deleted_listing(fake_deadline: FakeDeadline) -> None:
    a = submit_ok(fake_deadline)["_id"]
    b = submit_ok(fake_deadline)["_id"]
    url = f"{fake_deadline.url}/api/jobs"
    r = requests.delete(url, params={"JobID": a}, timeout=TIMEOUT_S)
    assert (r.status_code, r.text) == (200, "Success")
    assert requests.get(url, params={"JobID": a}, timeout=TIMEOUT_S).json() == []
    assert requests.get(url, params={"Deleted": "true", "IdOnly": "true"}, timeout=TIMEOUT_S).json() == [a]
    assert put_job(fake_deadline, "archive", b).text == "Success"
    assert requests.get(url, params={"IdOnly": "true"}, timeout=TIMEOUT_S).json() == []


# ---------------------------------------------------------------------------------------------------------
# pools, groups, workers, reports


def test_pools_groups_and_workers(fake_deadline_factory) -> None:
    fake = fake_deadline_factory(pools=("gpu", "cpu"), groups=("none", "gpu_24gb"), workers=("gpu01", "gpu02"))
    assert requests.get(f"{fake.url}/api/pools", timeout=TIMEOUT_S).json() == ["none", "gpu", "cpu"]
    assert requests.get(f"{fake.url}/api/groups", timeout=TIMEOUT_S).json() == ["none", "gpu_24gb"]
    r = requests.get(f"{fake.url}/api/slaves", params={"NamesOnly": "true"}, timeout=TIMEOUT_S)
    assert r.json() == ["gpu01", "gpu02"]
    assert_text_error(requests.post(f"{fake.url}/api/slaves", json={}, timeout=TIMEOUT_S), 501)


def test_fixture_pools_and_groups(fake_deadline: FakeDeadline) -> None:
    assert requests.get(f"{fake_deadline.url}/api/pools", timeout=TIMEOUT_S).json() == ["none", "gpu", "cpu"]
    groups = requests.get(f"{fake_deadline.url}/api/groups", timeout=TIMEOUT_S).json()
    assert groups == ["none", "gpu_24gb", "gpu_48gb"]


def test_reports(fake_deadline: FakeDeadline) -> None:
    store = fake_deadline.store
    store.task_failure_limit = 2
    job_id = submit_ok(fake_deadline, Name="rep", Frames="1-2", ChunkSize=2, UserName="alice")["_id"]
    url = fake_deadline.url
    assert requests.get(f"{url}/api/jobreports", params={"JobID": job_id}, timeout=TIMEOUT_S).json() == []
    lease = store.dequeue_task("gpu01")
    assert lease is not None
    assert store.fail_task(job_id, 0, "ComfyUI died\nTraceback ...", "log of attempt 1") == TASK_QUEUED
    lease = store.dequeue_task("gpu02")
    assert lease is not None
    store.complete_task(job_id, 0, "log of attempt 2")

    errors = requests.get(f"{url}/api/jobreports", params={"JobID": job_id, "Data": "error"},
                          timeout=TIMEOUT_S).json()
    assert len(errors) == 1
    error = errors[0]
    assert {"_id", "Job", "Type", "Date", "Slave", "Task", "Title", "JobName", "JobUser", "Plugin",
            "Frames"} <= set(error)
    assert (error["Job"], error["Type"], error["Slave"], error["Task"]) == (job_id, 1, "gpu01", 0)
    assert (error["Title"], error["JobName"], error["JobUser"], error["Plugin"]) == ("ComfyUI died", "rep",
                                                                                    "alice", "ComfyUI")
    assert error["Frames"] == "1-2"
    logs = requests.get(f"{url}/api/jobreports", params={"JobID": job_id, "Data": "log"}, timeout=TIMEOUT_S).json()
    assert [(r["Type"], r["Slave"]) for r in logs] == [(0, "gpu01"), (0, "gpu02")]
    contents = requests.get(f"{url}/api/jobreports", params={"JobID": job_id, "Data": "alllogcontents"},
                            timeout=TIMEOUT_S).json()
    assert contents == ["log of attempt 1", "log of attempt 2"]
    r = requests.get(f"{url}/api/jobreports", params={"JobID": job_id, "Data": "errorcontents",
                                                      "ReportID": error["_id"]}, timeout=TIMEOUT_S)
    assert r.json() == "ComfyUI died\nTraceback ..."
    task_errors = requests.get(f"{url}/api/taskreports", params={"JobID": job_id, "TaskID": 0, "Data": "error"},
                               timeout=TIMEOUT_S).json()
    assert [r["_id"] for r in task_errors] == [error["_id"]]
    requeues = requests.get(f"{url}/api/jobreports", params={"JobID": job_id, "Data": "requeue"},
                            timeout=TIMEOUT_S).json()
    assert requeues == []
    r = requests.get(f"{url}/api/jobreports", params={"JobID": "0" * 24, "Data": "log"}, timeout=TIMEOUT_S)
    assert_text_error(r, 500)


# ---------------------------------------------------------------------------------------------------------
# emulated Workers


def test_worker_renders_job_to_completion_and_listener_hears_once(fake_deadline: FakeDeadline) -> None:
    store = fake_deadline.store
    heard: List[tuple] = []
    store.add_listener(lambda event, job_id: heard.append((event, job_id)))
    job_id = submit_ok(fake_deadline, Frames="1-4", ChunkSize=2)["_id"]

    lease = store.dequeue_task("gpu01", pools=["gpu"], groups=["gpu_24gb"])
    assert lease is not None and (lease.job_id, lease.task_id, lease.frames) == (job_id, 0, (1, 2))
    store.report_progress(job_id, 0, 42.5, "frame 1 of 2", worker="gpu01")
    task = requests.get(f"{fake_deadline.url}/api/tasks", params={"JobID": job_id, "TaskID": 0},
                        timeout=TIMEOUT_S).json()
    assert (task["Stat"], task["Slave"], task["Prog"], task["RndStat"]) == (TASK_RENDERING, "gpu01", "42 %",
                                                                            "frame 1 of 2")
    assert get_job(fake_deadline, job_id)["DateStart"] != "0001-01-01T00:00:00Z"
    store.complete_task(job_id, 0, "done 0", worker="gpu01")
    assert get_job(fake_deadline, job_id)["Stat"] == JOB_ACTIVE
    second = store.dequeue_task("gpu02")
    assert second is not None and second.frames == (3, 4)
    assert store.dequeue_task("gpu03") is None
    store.complete_task(job_id, 1, "done 1")

    job = get_job(fake_deadline, job_id)
    assert job["Stat"] == JOB_COMPLETED and job["CompletedChunks"] == 2 and job["ComFra"] == 4
    assert job["DateComp"] != "0001-01-01T00:00:00Z"
    assert status_text(fake_deadline, job_id) == "Completed"
    assert [e for e in heard if e[0] == "OnJobFinished"] == [("OnJobFinished", job_id)]
    assert [e[0] for e in heard] == ["OnJobSubmitted", "OnJobStarted", "OnJobFinished"]
    with pytest.raises(TaskNotRenderingError):
        store.complete_task(job_id, 1, "twice")
    put_job(fake_deadline, "complete", job_id)
    assert [e for e in heard if e[0] == "OnJobFinished"] == [("OnJobFinished", job_id)]


def test_dequeue_respects_pool_group_priority_and_order(fake_deadline: FakeDeadline) -> None:
    store = fake_deadline.store
    low = submit_ok(fake_deadline, Name="low", Pool="gpu", Priority=10)["_id"]
    cpu = submit_ok(fake_deadline, Name="cpu", Pool="cpu", Priority=100)["_id"]
    high = submit_ok(fake_deadline, Name="high", Pool="gpu", Priority=90, Group="gpu_48gb")["_id"]
    early = submit_ok(fake_deadline, Name="early", Pool="gpu", Priority=10)["_id"]
    suspended = submit_ok(fake_deadline, Pool="gpu", Priority=100, InitialStatus="Suspended")["_id"]

    lease = store.dequeue_task("w1", pools=["gpu"], groups=["gpu_24gb"])
    assert lease is not None and lease.job_id == low  # high's group excludes w1; low was submitted first
    lease = store.dequeue_task("w2", pools=["gpu"], groups=["gpu_48gb"])
    assert lease is not None and lease.job_id == high
    lease = store.dequeue_task("w3", pools=["gpu", "cpu"], groups=["gpu_24gb"])
    assert lease is not None and lease.job_id == early  # pool order beats priority
    lease = store.dequeue_task("w4", pools=["gpu", "cpu"], groups=["gpu_24gb"])
    assert lease is not None and lease.job_id == cpu
    assert store.dequeue_task("w5", pools=["gpu", "cpu"]) is None
    assert store.job_stat(suspended) == JOB_SUSPENDED


def test_dequeue_respects_machine_limit_concurrency_and_lists(fake_deadline: FakeDeadline) -> None:
    store = fake_deadline.store
    job_id = submit_ok(fake_deadline, Frames="1-6", ChunkSize=1, MachineLimit=1, ConcurrentTasks=2,
                       Blacklist="bad01")["_id"]
    assert store.dequeue_task("bad01") is None
    assert store.dequeue_task("gpu01") is not None
    assert store.dequeue_task("gpu02") is None  # machine limit 1: gpu01 holds it
    assert store.dequeue_task("gpu01") is not None  # ConcurrentTasks 2
    assert store.dequeue_task("gpu01") is None
    assert get_job(fake_deadline, job_id)["RenderingChunks"] == 2


def test_worker_error_fails_task_and_job(fake_deadline: FakeDeadline) -> None:
    store = fake_deadline.store
    heard: List[tuple] = []
    store.add_listener(lambda event, job_id: heard.append((event, job_id)))
    job_id = submit_ok(fake_deadline, Frames="1-2", ChunkSize=1)["_id"]
    lease = store.dequeue_task("gpu01")
    assert lease is not None
    assert store.fail_task(job_id, lease.task_id, "CUDA out of memory") == TASK_FAILED
    job = get_job(fake_deadline, job_id)
    assert (job["Stat"], job["FailedChunks"], job["Errs"]) == (JOB_FAILED, 1, 1)
    assert status_text(fake_deadline, job_id) == "Failed"
    assert ("OnJobFailed", job_id) in heard and ("OnJobError", job_id) in heard
    assert store.dequeue_task("gpu01") is None
    assert put_job(fake_deadline, "requeue", job_id).text == "Success"
    assert store.job_stat(job_id) == JOB_ACTIVE and store.dequeue_task("gpu01") is not None


def test_job_override_of_task_failure_limit(fake_deadline: FakeDeadline) -> None:
    store = fake_deadline.store
    job_id = submit_ok(fake_deadline, OverrideTaskFailureDetection="true", FailureDetectionTaskErrors=2)["_id"]
    store.dequeue_task("gpu01")
    assert store.fail_task(job_id, 0, "first") == TASK_QUEUED
    assert store.job_stat(job_id) == JOB_ACTIVE
    store.dequeue_task("gpu01")
    assert store.fail_task(job_id, 0, "second") == TASK_FAILED
    assert store.job_stat(job_id) == JOB_FAILED


def test_requeue_and_stale_leases(fake_deadline: FakeDeadline) -> None:
    store = fake_deadline.store
    job_id = submit_ok(fake_deadline, Frames="1-2", ChunkSize=2)["_id"]
    lease = store.dequeue_task("gpu01")
    assert lease is not None and store.lease_is_current(lease)
    store.requeue_task(job_id, 0, "Worker shutting down")
    task = tasks(fake_deadline, job_id)[0]
    assert (task["Stat"], task["Slave"]) == (TASK_QUEUED, "")
    assert not store.lease_is_current(lease)
    assert [r.text for r in store.reports(job_id)] == ["Worker shutting down"]

    again = store.dequeue_task("gpu01")
    assert again is not None and store.lease_is_current(again)
    assert put_job(fake_deadline, "suspend", job_id).text == "Success"
    assert not store.lease_is_current(again)
    with pytest.raises(TaskNotRenderingError):
        store.report_progress(job_id, 0, 50.0)
    with pytest.raises(TaskNotRenderingError):
        store.complete_task(job_id, 0, "too late", worker="gpu01")
    with pytest.raises(ValueError):
        store.report_progress(job_id, 0, float("nan"))


def test_wait_until_wakes_on_change(fake_deadline: FakeDeadline) -> None:
    store = fake_deadline.store
    job_id = submit_ok(fake_deadline)["_id"]

    def worker() -> None:
        lease = store.dequeue_task("gpu01")
        assert lease is not None
        store.complete_task(lease.job_id, lease.task_id, "ok")

    thread = threading.Thread(target=worker)
    thread.start()
    assert store.wait_until(lambda: store.job_stat(job_id) == JOB_COMPLETED, timeout_s=5)
    thread.join(timeout=5)
    assert not store.wait_until(lambda: False, timeout_s=0.05)


def test_on_job_complete_delete_removes_the_job(fake_deadline: FakeDeadline) -> None:
    store = fake_deadline.store
    job_id = submit_ok(fake_deadline, OnJobComplete="Delete")["_id"]
    lease = store.dequeue_task("gpu01")
    assert lease is not None
    store.complete_task(job_id, 0, "ok")
    assert requests.get(f"{fake_deadline.url}/api/jobs", params={"JobID": job_id}, timeout=TIMEOUT_S).json() == []
    assert store.job_json(job_id)["Stat"] == JOB_COMPLETED


# ---------------------------------------------------------------------------------------------------------
# faults and outages


def test_delay_fault_times_a_client_out(fake_deadline: FakeDeadline) -> None:
    fake_deadline.set_faults(delay_s=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{fake_deadline.url}/api/jobs", timeout=0.2)
    fake_deadline.clear_faults()
    assert requests.get(f"{fake_deadline.url}/api/jobs", timeout=TIMEOUT_S).json() == []


def test_status_fault_under_a_prefix_and_method(fake_deadline: FakeDeadline) -> None:
    fake_deadline.set_faults(status=500, body="Error: database unreachable", path_prefix="/api/jobs", method="POST")
    r = submit(fake_deadline, {"Plugin": "ComfyUI"})
    assert_text_error(r, 500, "Error: database unreachable")
    assert fake_deadline.submissions() == []
    assert requests.get(f"{fake_deadline.url}/api/jobs", timeout=TIMEOUT_S).json() == []
    assert ("POST", "/api/jobs") in fake_deadline.requests_seen()
    fake_deadline.clear_faults()
    assert submit(fake_deadline, {"Plugin": "ComfyUI"}).status_code == 200


def test_a_fault_after_some_requests_lets_those_through(fake_deadline: FakeDeadline) -> None:
    fake_deadline.set_faults(status=500, body="Error: database unreachable", path_prefix="/api/jobs",
                             method="POST", after=2)
    assert [submit(fake_deadline, {"Plugin": "ComfyUI"}).status_code for _ in range(4)] == [200, 200, 500, 500]
    assert len(fake_deadline.submissions()) == 2
    assert requests.get(f"{fake_deadline.url}/api/jobs", timeout=TIMEOUT_S).status_code == 200  # GET: not POST


def test_dropped_connection_fault(fake_deadline: FakeDeadline) -> None:
    fake_deadline.set_faults(drop_connection=True, path_prefix="/api/jobs")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{fake_deadline.url}/api/jobs", timeout=TIMEOUT_S)
    assert requests.get(fake_deadline.url, timeout=TIMEOUT_S).status_code == 200


def test_stop_refuses_connections_and_restart_serves_the_same_store(fake_deadline: FakeDeadline) -> None:
    session = requests.Session()
    job_id = session.post(f"{fake_deadline.url}/api/jobs", json={"JobInfo": {"Plugin": "ComfyUI"},
                                                                 "PluginInfo": {}}, timeout=TIMEOUT_S).json()["_id"]
    fake_deadline.stop()
    assert not fake_deadline.running
    for client in (requests, session):
        with pytest.raises(requests.exceptions.ConnectionError):
            client.get(f"{fake_deadline.url}/api/jobs", timeout=TIMEOUT_S)
    fake_deadline.restart()
    assert requests.get(f"{fake_deadline.url}/api/jobs", params={"IdOnly": "true"}, timeout=TIMEOUT_S).json() == [
        job_id]


def test_requests_seen_records_method_and_query(fake_deadline: FakeDeadline) -> None:
    requests.get(f"{fake_deadline.url}/api/jobs", params={"IdOnly": "true"}, timeout=TIMEOUT_S)
    requests.get(f"{fake_deadline.url}/api/nothing", timeout=TIMEOUT_S)
    assert fake_deadline.requests_seen() == [("GET", "/api/jobs?IdOnly=true"), ("GET", "/api/nothing")]
    assert not any(method == "POST" for method, _ in fake_deadline.requests_seen())
