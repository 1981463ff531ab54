"""A several-pass workflow submitted to the Deadline Web Service double: JobInfo names every pass's output, and
``comfyfarm status`` shows each.

JobInfo's numbered output keys are ``OutputDirectory<i>`` and ``OutputFilename<i>`` (``#`` padding), i = 0, 1, …
with no gap: Thinkbox's Deadline 10 manual, "Manual Job Submission" → Job Info File
(https://docs.thinkboxsoftware.com/products/deadline/10.1/1_User%20Manual/manual/manual-submission.html), as
ynput/ayon-deadline's ``DeadlineJobInfo`` serialises them (``OutputDirectory{}``/``OutputFilename{}`` from 0);
/work/shared/reference/deadline.md §3 and §7. The job keeps them as its ``OutDir``/``OutFile`` lists, which
Monitor's output actions use.
"""

from __future__ import annotations

import time
from pathlib import Path

from farm_plugin.paths import PathMapping
from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.params import resolve_parameters
from flame_submitter.jobs.builder import FarmPaths, SourceClip, plan_jobs
from flame_submitter.jobs.templates import load_template
from tests.flame_submitter.test_submit import comfyfarm, write_config

from .two_passes import two_pass_package


def test_every_pass_is_an_output_of_the_deadline_job_in_the_manifests_order(fake_deadline, tmp_path: Path,
                                                                             studio: Path) -> None:
    package = two_pass_package(tmp_path / "invert")
    config = write_config(tmp_path, studio, fake_deadline.url)
    out = studio / "sh010" / "comfy"
    result = comfyfarm(config, "submit", "--workflow", str(package), "--input",
                       str(studio / "sh010" / "plate" / "plate.####.exr"), "--frames", "1001-1024", "--output",
                       str(out / "sh010.####.exr"))
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    sent, hand_back = fake_deadline.submissions()
    assert not {key for key in hand_back["JobInfo"] if key.startswith("Output")}  # it renders nothing
    outputs = {key: value for key, value in sent["JobInfo"].items() if key.startswith("Output")}
    assert outputs == {"OutputDirectory0": str(out), "OutputFilename0": "sh010_inverted.####.exr",
                       "OutputDirectory1": str(out), "OutputFilename1": "sh010_original.####.exr"}
    job = fake_deadline.store.job_json(job_id)
    assert job["OutDir"] == [str(out), str(out)]
    assert job["OutFile"] == ["sh010_inverted.####.exr", "sh010_original.####.exr"]
    status = comfyfarm(config, "status", job_id)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[3:5] == [f"  inverted: {out}/sh010_inverted.####.exr",
                                              f"  original: {out}/sh010_original.####.exr"]


def test_a_one_pass_job_keeps_its_one_output(fake_deadline, tmp_path: Path, studio: Path) -> None:
    config = write_config(tmp_path, studio, fake_deadline.url)
    out = studio / "sh010" / "comfy"
    result = comfyfarm(config, "submit", "--workflow", "invert", "--input",
                       str(studio / "sh010" / "plate" / "plate.####.exr"), "--output", str(out / "sh010.####.exr"))
    assert result.returncode == 0, result.stderr
    sent, _hand_back = fake_deadline.submissions()
    assert {key for key in sent["JobInfo"] if key.startswith("Output")} == {"OutputDirectory0", "OutputFilename0"}
    assert "comfyfarm_passes" not in str(sent["JobInfo"])
    status = comfyfarm(config, "status", result.stdout.strip())
    assert status.stdout.splitlines()[3] == f"  output: {out}/sh010.####.exr"


def test_each_passs_output_is_in_the_farms_paths_with_the_jobs_padding(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    package = load_package(two_pass_package(tmp_path / "invert"))
    clip = SourceClip(name="sh010_plate", pattern="/Volumes/projects/show/sh010/plate.#####.exr",
                      frames=tuple(range(1001, 1049)),
                      output_pattern="/Volumes/projects/show/sh010/comfy/sh010_#####.exr", width=1920, height=1080,
                      fps=24.0, timecode="01:00:00:00")
    mappings = (PathMapping.from_dict({"linux": "/mnt/projects", "macos": "/Volumes/projects"}),)
    preview, main = plan_jobs(
        [clip], workflow=package, parameters=resolve_parameters(package, {}), template=load_template("preview"),
        paths=FarmPaths(Path("/Volumes/projects/comfyfarm/jobs"), mappings, workstation_os="macos", farm_os="linux"),
        user="ann", token="beef")
    for job in (preview, main):
        info = job.submission.job_info
        assert [(info[f"OutputDirectory{i}"], info[f"OutputFilename{i}"]) for i in (0, 1)] == [
            ("/mnt/projects/show/sh010/comfy", "sh010_inverted_#####.exr"),
            ("/mnt/projects/show/sh010/comfy", "sh010_original_#####.exr")]
        assert "OutputFilename2" not in info
        assert "comfyfarm_passes=inverted,original" in info.values()  # ExtraInfoKeyValue<n>: status names them
