"""``comfyfarm submit | status | jobs | cancel`` as an artist runs them, against the Web Service double."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
import yaml

from farm_plugin.jobrecord import read_job_record
from flame_submitter.cli.demo_plate import write_demo_plate
from tests.farm_plugin.frames.foreign_exr import write_exr

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, studio: Path, url: str, **extra) -> Path:
    config = {"deadline_url": url, "deadline_user": "ann", "jobs_root": str(studio / "comfyfarm" / "jobs"),
              "shared_roots": [str(studio)], "deadline_timeout_s": 5, **extra}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def comfyfarm(config: Path, *args: str, extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYFARM_", "COMFYUI_"))}
    env.update(COMFYFARM_CONFIG=str(config), COMFYFARM_STUDIO_CONFIG=str(config), **(extra_env or {}))
    return subprocess.run([sys.executable, "-m", "flame_submitter.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def submit_args(studio: Path, *extra: str) -> List[str]:
    return ["submit", "--workflow", "blur", "--input", str(studio / "sh010" / "plate" / "plate.####.exr"),
            "--frames", "1001-1024", "--output", str(studio / "sh010" / "comfy" / "blur.####.exr"), "--set",
            "radius=3", *extra]


def job_folders(studio: Path) -> List[Path]:
    return sorted((studio / "comfyfarm" / "jobs").iterdir())


def test_submit_creates_the_job_deadline_expects(fake_deadline, tmp_path: Path, studio: Path) -> None:
    config = write_config(tmp_path, studio, fake_deadline.url)
    result = comfyfarm(config, *submit_args(studio, "--chunk-size", "5", "--pool", "gpu", "--priority", "70"))
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    sent, hand_back = fake_deadline.submissions()
    assert sent["job_id"] == job_id
    info, plugin = sent["JobInfo"], sent["PluginInfo"]
    assert (info["Plugin"], info["Frames"], info["ChunkSize"], info["Pool"], info["Priority"]) == (
        "ComfyUI", "1001-1024", "5", "gpu", "70")
    assert info["Name"] == "plate - Gaussian blur" and info["UserName"] == "ann"
    assert (info["OutputDirectory0"], info["OutputFilename0"]) == (str(studio / "sh010" / "comfy"), "blur.####.exr")
    assert "EventOptIns" not in info and info["ExtraInfo0"] == "blur"
    assert "JobDependencies" not in info
    # its hand-back job: waits for it however it ends, then brings the frames back to Flame
    back_info, back_plugin = hand_back["JobInfo"], hand_back["PluginInfo"]
    assert (back_info["JobDependencies"], back_info["ResumeOnCompleteDependencies"],
            back_info["ResumeOnFailedDependencies"], back_info["ResumeOnDeletedDependencies"]) == (
        job_id, "true", "true", "true")
    assert (back_info["Plugin"], back_info["Pool"], back_info["Priority"], back_info["Frames"]) == (
        "ComfyUI", "gpu", "80", "0")
    assert (back_plugin["Mode"], back_plugin["FinishesJob"], back_plugin["JobRecord"]) == (
        "finish", job_id, plugin["JobRecord"])
    assert fake_deadline.store.job_stat(hand_back["job_id"]) == 6  # Pending until its job ends
    assert f"handed back by job {hand_back['job_id']}" in result.stderr
    (folder,) = job_folders(studio)
    assert plugin["JobRecord"] == str(folder / "job.json")
    record = read_job_record(folder / "job.json")
    assert record.source.frames == tuple(range(1001, 1025))
    assert record.workflow.parameters == {"radius": 3, "sigma": 1.0}
    assert record.source.timecode == "01:00:00:00" and record.source.width == 16
    tasks = fake_deadline.store.tasks_json(job_id)["Tasks"]
    assert [t["Frames"] for t in tasks] == ["1001-1005", "1006-1010", "1011-1015", "1016-1020", "1021-1024"]
    status = comfyfarm(config, "status", job_id)
    assert status.returncode == 0, status.stderr
    assert "state: Queued    tasks: 0/5 done    progress: 0 %    errors: 0" in status.stdout
    jobs = comfyfarm(config, "jobs")
    assert jobs.returncode == 0 and job_id in jobs.stdout and "0/5 tasks" in jobs.stdout
    assert hand_back["job_id"] not in jobs.stdout  # the artist's render jobs only
    cancel = comfyfarm(config, "cancel", job_id)
    assert cancel.returncode == 0, cancel.stderr
    assert "state: Failed" in comfyfarm(config, "status", job_id).stdout
    assert "state: Queued" in comfyfarm(config, "status", hand_back["job_id"]).stdout  # released by the cancel


def test_dry_run_prints_the_jobs_and_sends_nothing(fake_deadline, tmp_path: Path, studio: Path) -> None:
    config = write_config(tmp_path, studio, fake_deadline.url)
    result = comfyfarm(config, *submit_args(studio, "--dry-run", "--template", "preview"))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [job["part"] for job in document["jobs"]] == ["preview", "main"]
    assert document["jobs"][0]["JobInfo"]["Frames"] == "1001-1021x10"
    assert [job["WaitsFor"] for job in document["jobs"]] == [None, "preview"]
    assert [job["HandBack"]["PluginInfo"]["Part"] for job in document["jobs"]] == ["preview", "main"]
    assert fake_deadline.requests_seen() == []
    assert job_folders(studio) == []


def test_preview_template_submits_each_job_on_its_own_the_main_waiting_for_its_preview(
        fake_deadline, tmp_path: Path, studio: Path) -> None:
    config = write_config(tmp_path, studio, fake_deadline.url)
    result = comfyfarm(config, *submit_args(studio, "--template", "preview"))
    assert result.returncode == 0, result.stderr
    preview_id, main_id = result.stdout.split()
    sent = fake_deadline.submissions()
    assert [s["JobInfo"]["Name"] for s in sent] == [
        "plate - Gaussian blur [preview: every 10th frame]", "plate - Gaussian blur [preview: every 10th frame] "
        "[hand back]", "plate - Gaussian blur", "plate - Gaussian blur [hand back]"]
    assert [s["job_id"] for s in sent][0::2] == [preview_id, main_id]
    assert [s["JobInfo"]["Frames"] for s in sent][0::2] == ["1001-1021x10", "1002-1010,1012-1020,1022-1024"]
    assert [s["JobInfo"].get("JobDependencies") for s in sent] == [None, preview_id, preview_id, main_id]
    assert sent[1]["PluginInfo"]["FinishesFrames"] == "1001-1021x10"
    assert [method for method, _ in fake_deadline.requests_seen() if method == "POST"] == ["POST"] * 4  # one each
    assert len(job_folders(studio)) == 1  # one record for all four jobs


def plan_and_submit(fake_deadline, tmp_path: Path, studio: Path, *, clips: int = 1, template: str = "preview",
                    client=None):
    """Flame's Submit: several clips in one submission (``comfyfarm submit`` takes one)."""
    from farm_plugin.workflow.package import load_package
    from flame_submitter.config import load_config
    from flame_submitter.deadline.client import DeadlineClient
    from flame_submitter.deadline.submit import ClipRequest, plan, submit_jobs
    from flame_submitter.jobs.templates import load_template

    config = load_config(write_config(tmp_path, studio, fake_deadline.url), environ={})
    requests = [ClipRequest(f"sh0{index}0", str(studio / "sh010" / "plate" / "plate.####.exr"),
                            list(range(1001, 1025)), str(studio / f"sh0{index}0" / "comfy" / "blur.####.exr"))
                for index in range(1, clips + 1)]
    jobs = plan(requests, workflow=load_package(REPO / "workflows" / "blur"), parameters={},
                template=load_template(template), config=config)
    return submit_jobs(jobs, client or DeadlineClient(fake_deadline.url))


def test_two_clips_with_a_preview_make_two_separate_chains(fake_deadline, tmp_path: Path, studio: Path) -> None:
    """Not one chain of all jobs (what a batch with ``Dependent: true`` made): each main job waits for its own
    preview only, each hand-back job for its own job."""
    submitted = plan_and_submit(fake_deadline, tmp_path, studio, clips=2)
    assert [(item.planned.submission.job_info["ExtraInfo1"], item.planned.part) for item in submitted] == [
        ("sh010", "preview"), ("sh010", "main"), ("sh020", "preview"), ("sh020", "main")]
    jobs = {job["_id"]: job for job in fake_deadline.store.jobs_json()}
    assert len(jobs) == 8
    waits = {job_id: [d["JobID"] for d in job["Props"]["Dep"]] for job_id, job in jobs.items()}
    a_preview, a_main, b_preview, b_main = submitted
    assert waits[a_preview.job_id] == [] and waits[b_preview.job_id] == []
    assert waits[a_main.job_id] == [a_preview.job_id] and waits[b_main.job_id] == [b_preview.job_id]
    for item in submitted:
        assert waits[item.hand_back_id] == [item.job_id]
    assert [jobs[item.job_id]["Stat"] for item in submitted] == [1, 6, 1, 6]  # the previews render at once


# -- preflight: a clear message, exit 2, nothing submitted, no job folder -------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a, s: a.__setitem__(a.index("--frames") + 1, "990-1010"),
         "comfyfarm: 11 frame(s) missing from {plate}: 990-1000: render or export them"),
        (lambda a, s: a.__setitem__(a.index("--output") + 1, "/tmp/elsewhere/blur.####.exr"),
         "comfyfarm: the output /tmp/elsewhere/blur.####.exr is not on shared storage the farm can reach"),
        (lambda a, s: a.extend(["--pool", "gpu_farm"]),
         "comfyfarm: pool 'gpu_farm' does not exist on the farm: use one of none, gpu, cpu"),
        (lambda a, s: a.extend(["--group", "a100"]),
         "comfyfarm: group 'a100' does not exist on the farm: use one of none, gpu_24gb, gpu_48gb"),
        (lambda a, s: a.extend(["--chunk-size", "0"]),
         "comfyfarm: command line: chunk_size: 0 is not a whole number from 1 to 100000"),
        (lambda a, s: a.extend(["--set", "radius=99"]),
         "comfyfarm: parameter 'radius' of workflow 'blur': 99 is above the maximum 31"),
        (lambda a, s: a.extend(["--template", "fast"]), "comfyfarm: no job template 'fast': use one of"),
        (lambda a, s: a.__setitem__(a.index("--frames") + 1, "1010-1001"),
         "comfyfarm: frame range '1010-1001' runs backwards: write it as 1001-1010"),
        (lambda a, s: a.extend(["--farm", "chunk_size"]),
         "comfyfarm: --farm 'chunk_size': write KEY=VALUE, e.g. --farm chunk_size=8"),
        (lambda a, s: a.extend(["--backend", "deadline-cloud", "--bundle-dir", str(s / "bundles"), "--job-param",
                                "ComfyUIDir"]),
         "comfyfarm: --job-param 'ComfyUIDir': write KEY=VALUE, e.g. --job-param ComfyUIDir=/opt/ComfyUI"),
    ],
)
def test_preflight_failures_submit_nothing(fake_deadline, tmp_path: Path, studio: Path, change, message) -> None:
    config = write_config(tmp_path, studio, fake_deadline.url)
    args = submit_args(studio)
    change(args, studio)
    result = comfyfarm(config, *args)
    assert result.returncode == 2, result.stderr
    plate = studio / "sh010" / "plate" / "plate.####.exr"
    assert result.stderr.strip().splitlines()[-1].startswith(message.format(plate=plate)), result.stderr
    assert fake_deadline.submissions() == []
    assert job_folders(studio) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"--farm": "output_format=dpx"}, "output pattern '{out}/blur.####.exr' ends in .exr but the output format is dpx: "
                                      "end it in .dpx, or choose the output format exr"),
    ({"--output": "{out}/blur.####.dpx"}, "output pattern '{out}/blur.####.dpx': DPX cannot hold the half-float pixels "
                                          "of the plate {plate}: its values outside 0..1 would be clipped: end it in "
                                          ".exr or .tif"),
    ({"--workflow": "{keyer}", "--output": "{out}/key.####.jpg", "--set": None},
     "output pattern '{out}/key.####.jpg': JPEG cannot hold the alpha that the result pass of workflow keyer gives: "
     "end it in .exr, .tif, .png or .dpx"),
])
def test_an_output_format_that_cannot_hold_the_result_submits_nothing(fake_deadline, tmp_path: Path, studio: Path,
                                                                      change: Dict[str, Optional[str]],
                                                                      message: str) -> None:
    """Refused before anything reaches the farm, where each frame's write would fail (or clip) on a worker."""
    from tests.flame_submitter.test_run_local import keyer_package

    names = {"out": studio / "sh010" / "comfy", "plate": studio / "sh010" / "plate" / "plate.1001.exr",
             "keyer": keyer_package(tmp_path / "keyer") if "--workflow" in change else None}
    args = submit_args(studio)
    for option, value in change.items():
        if value is None:  # the option goes
            del args[args.index(option):args.index(option) + 2]
        elif option in args:
            args[args.index(option) + 1] = value.format(**names)
        else:
            args += [option, value.format(**names)]
    result = comfyfarm(write_config(tmp_path, studio, fake_deadline.url), *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"comfyfarm: {message.format(**names)}"
    assert fake_deadline.submissions() == []
    assert job_folders(studio) == []
    assert not names["out"].exists()


def test_a_plate_with_text_headers_submits_its_rate_and_timecode(fake_deadline, tmp_path: Path,
                                                                  studio: Path) -> None:
    folder = studio / "sh020" / "plate"
    folder.mkdir(parents=True)
    pixels = np.full((8, 8, 3), 0.5, np.float32)
    for index, frame in enumerate(range(1001, 1003)):
        write_exr(folder / f"plate.{frame}.exr", pixels,
                  [("FramesPerSecond", "string", "24000/1001"), ("timeCode", "string", f"00:59:59;{index:02d}")])
    args = submit_args(studio)
    args[args.index("--input") + 1] = str(folder / "plate.####.exr")
    args[args.index("--frames") + 1] = "1001-1002"
    result = comfyfarm(write_config(tmp_path, studio, fake_deadline.url), *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr
    (folder_of_job,) = job_folders(studio)
    record = read_job_record(folder_of_job / "job.json")
    assert record.source.fps == pytest.approx(24000 / 1001) and record.source.timecode == "00:59:59;00"


def test_input_off_shared_storage(fake_deadline, tmp_path: Path, studio: Path) -> None:
    local = tmp_path / "local"
    write_demo_plate(local, frame_count=2, width=8, height=8)
    config = write_config(tmp_path, studio, fake_deadline.url)
    args = submit_args(studio)
    args[args.index("--input") + 1] = str(local / "plate.####.exr")
    args[args.index("--frames") + 1] = "1001-1002"
    result = comfyfarm(config, *args)
    assert result.returncode == 2
    assert f"the input {local}/plate.####.exr is not on shared storage the farm can reach (configured: {studio})" \
        in result.stderr
    assert fake_deadline.submissions() == []


def test_no_farm_configured(tmp_path: Path, studio: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"jobs_root": str(studio / "comfyfarm" / "jobs"), "shared_roots": [str(studio)]}))
    result = comfyfarm(config, *submit_args(studio))
    assert result.returncode == 2
    assert "no Deadline Web Service configured: set deadline_url in the config file or COMFYFARM_DEADLINE_URL" \
        in result.stderr
    assert job_folders(studio) == []


# -- Web Service failures: a clear message, exit 1, nothing submitted, no job folder --------------


def test_web_service_down(fake_deadline_factory, tmp_path: Path, studio: Path) -> None:
    fake = fake_deadline_factory()
    url = fake.url
    fake.stop()
    result = comfyfarm(write_config(tmp_path, studio, url), *submit_args(studio))
    assert result.returncode == 1
    assert f"comfyfarm: nothing was submitted: the Deadline Web Service is not reachable at {url} " \
           "(connection refused)" in result.stderr
    assert job_folders(studio) == []


def test_web_service_slow(fake_deadline, tmp_path: Path, studio: Path) -> None:
    fake_deadline.set_faults(delay_s=2.0)
    result = comfyfarm(write_config(tmp_path, studio, fake_deadline.url, deadline_timeout_s=0.3), *submit_args(studio))
    assert result.returncode == 1
    assert "did not answer GET / within 0.3 s" in result.stderr
    assert fake_deadline.submissions() == [] and job_folders(studio) == []


def test_wrong_credentials(fake_deadline_factory, tmp_path: Path, studio: Path) -> None:
    fake = fake_deadline_factory(users={"ann": "hunter2"})
    config = write_config(tmp_path, studio, fake.url)
    result = comfyfarm(config, *submit_args(studio), extra_env={"COMFYFARM_DEADLINE_PASSWORD": "letmein"})
    assert result.returncode == 1
    assert "refused the login as 'ann' (HTTP 401)" in result.stderr and "letmein" not in result.stderr
    assert fake.submissions() == [] and job_folders(studio) == []
    ok = comfyfarm(config, *submit_args(studio), extra_env={"COMFYFARM_DEADLINE_PASSWORD": "hunter2"})
    assert ok.returncode == 0, ok.stderr
    record_text = (job_folders(studio)[0] / "job.json").read_text()
    assert "hunter2" not in record_text and "hunter2" not in json.dumps(fake.submissions())


def test_server_error_on_submit_removes_the_job_folder(fake_deadline, tmp_path: Path, studio: Path) -> None:
    fake_deadline.set_faults(status=500, body="An exception occurred within the Deadline code.",
                             path_prefix="/api/jobs", method="POST")
    result = comfyfarm(write_config(tmp_path, studio, fake_deadline.url), *submit_args(studio))
    assert result.returncode == 1
    assert ("comfyfarm: nothing was submitted: the Deadline Web Service refused POST /api/jobs (HTTP 500): An "
            "exception occurred within the Deadline code.") in result.stderr
    assert job_folders(studio) == []


def test_a_submission_that_times_out_keeps_its_folder_and_says_what_to_check(fake_deadline, tmp_path: Path,
                                                                               studio: Path) -> None:
    fake_deadline.set_faults(delay_s=1.5, path_prefix="/api/jobs", method="POST")  # carried out after the delay
    config = write_config(tmp_path, studio, fake_deadline.url, deadline_timeout_s=0.5)
    result = comfyfarm(config, *submit_args(studio))
    assert result.returncode == 1
    (folder,) = job_folders(studio)
    assert result.stderr.strip().splitlines()[-1] == (
        f"comfyfarm: the Deadline Web Service at {fake_deadline.url} did not answer POST /api/jobs within 0.5 s: it "
        "is overloaded or stuck; try again, or raise deadline_timeout_s; the job 'plate - Gaussian blur' may have "
        "been submitted all the same: look for it in Deadline Monitor and delete it before submitting again (job "
        f"folder kept: {folder})")
    assert fake_deadline.store.wait_until(lambda: len(fake_deadline.submissions()) == 1, 5)
    assert fake_deadline.submissions()[0]["PluginInfo"]["JobRecord"] == str(folder / "job.json")


def test_jobs_created_although_their_answers_were_lost_are_found_by_their_plugin_info(
        fake_deadline, tmp_path: Path, studio: Path) -> None:
    from flame_submitter.deadline.client import DeadlineClient
    from flame_submitter.deadline.errors import DeadlineTimeout

    class AnswerLost(DeadlineClient):
        def submit_job(self, submission):
            super().submit_job(submission)  # the Web Service does the work…
            raise DeadlineTimeout(self.url, "POST /api/jobs", 0.5)  # …but its answer never arrives

    submitted = plan_and_submit(fake_deadline, tmp_path, studio, client=AnswerLost(fake_deadline.url))
    sent = [s["job_id"] for s in fake_deadline.submissions()]
    assert [(item.job_id, item.hand_back_id) for item in submitted] == [(sent[0], sent[1]), (sent[2], sent[3])]
    assert fake_deadline.submissions()[2]["JobInfo"]["JobDependencies"] == sent[0]
    assert len(job_folders(studio)) == 1


def test_a_submission_refused_part_way_deletes_what_it_had_submitted(fake_deadline, tmp_path: Path,
                                                                     studio: Path) -> None:
    fake_deadline.set_faults(status=500, body="An exception occurred within the Deadline code.",
                             path_prefix="/api/jobs", method="POST", after=2)  # the preview and its hand-back go in
    result = comfyfarm(write_config(tmp_path, studio, fake_deadline.url), *submit_args(studio, "--template", "preview"))
    assert result.returncode == 1
    preview, hand_back = (s["job_id"] for s in fake_deadline.submissions())
    assert result.stderr.strip().splitlines()[-1] == (
        "comfyfarm: nothing was submitted: the Deadline Web Service refused POST /api/jobs (HTTP 500): An exception "
        f"occurred within the Deadline code.; the job(s) it had submitted were deleted again ({preview}, {hand_back})")
    assert fake_deadline.store.jobs_json() == []
    deletes = [target for method, target in fake_deadline.requests_seen() if method == "DELETE"]
    assert deletes == [f"/api/jobs?JobID={hand_back}", f"/api/jobs?JobID={preview}"]  # newest first
    assert job_folders(studio) == []


def test_a_submission_that_cannot_be_deleted_again_names_every_job_that_exists(fake_deadline, tmp_path: Path,
                                                                               studio: Path) -> None:
    fake_deadline.set_faults(status=500, body="An exception occurred within the Deadline code.",
                             path_prefix="/api/jobs", after=2)  # POST, then the DELETEs, all refused
    result = comfyfarm(write_config(tmp_path, studio, fake_deadline.url), *submit_args(studio, "--template", "preview"))
    assert result.returncode == 1
    preview, hand_back = (s["job_id"] for s in fake_deadline.submissions())
    (folder,) = job_folders(studio)
    assert result.stderr.strip().splitlines()[-1] == (
        "comfyfarm: the Deadline Web Service refused POST /api/jobs (HTTP 500): An exception occurred within the "
        "Deadline code.; these Deadline jobs of the submission exist and could not be deleted again: "
        f"{preview} ('plate - Gaussian blur [preview: every 10th frame]'), {hand_back} ('plate - Gaussian blur "
        "[preview: every 10th frame] [hand back]'): delete them in Deadline Monitor before submitting again (job "
        f"folder kept: {folder})")
    assert sorted(job["_id"] for job in fake_deadline.store.jobs_json()) == sorted([preview, hand_back])


def test_status_shows_rendering_tasks_and_errors(fake_deadline, tmp_path: Path, studio: Path) -> None:
    fake_deadline.store.register_worker("gpu-node-01")
    config = write_config(tmp_path, studio, fake_deadline.url)
    result = comfyfarm(config, *submit_args(studio, "--chunk-size", "12"))
    job_id = result.stdout.strip()
    store = fake_deadline.store
    first = store.dequeue_task("gpu-node-01")
    store.report_progress(job_id, first.task_id, 50.0, "frame 1006 (6/12) · ImageBlur")
    second = store.dequeue_task("gpu-node-02")
    store.fail_task(job_id, second.task_id, "ComfyUI node 2 (ImageBlur) failed: RuntimeError: CUDA out of memory")
    status = comfyfarm(config, "status", job_id)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert "  task 0 (1001-1012): Rendering 50 % frame 1006 (6/12) · ImageBlur" in lines
    assert any(line.startswith("  error on gpu-node-02 (task 1): ComfyUI node 2 (ImageBlur) failed: RuntimeError: "
                               "CUDA out of memory") for line in lines), lines


def test_any_template_field_can_be_overridden(fake_deadline, tmp_path: Path, studio: Path) -> None:
    config = write_config(tmp_path, studio, fake_deadline.url)
    result = comfyfarm(config, *submit_args(studio, "--farm", "machine_limit=4", "--farm", "on_complete=Archive",
                                            "--dry-run"))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)["jobs"][0]["JobInfo"]
    assert (info["MachineLimit"], info["OnJobComplete"]) == ("4", "Archive")
    bad = comfyfarm(config, *submit_args(studio, "--farm", "machine_limits=4"))
    assert bad.returncode == 2
    assert "comfyfarm: command line: unknown key(s) machine_limits: the keys are" in bad.stderr
