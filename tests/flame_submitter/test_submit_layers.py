"""A several-pass workflow submitted with its passes as the layers of one EXR per frame (``exr_layers``): the
Deadline job names its one file once (``OutputDirectory0``/``OutputFilename0`` and nothing more: Deadline lists
each numbered output in the job's ``OutDir``/``OutFile``, which Monitor's output actions use; see
test_submit_passes.py for the keys' source), the job record asks for layers, ``comfyfarm status`` says what the
file holds, and a non-EXR output is refused before anything reaches the farm. The Deadline Cloud bundle of such a
job says what its one output holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest

from farm_plugin.jobrecord import read_job_record
from tests.flame_submitter.test_submit import comfyfarm, write_config

from .two_passes import two_pass_package


def plate(studio: Path) -> str:
    return str(studio / "sh010" / "plate" / "plate.####.exr")


@pytest.mark.parametrize("asked", ["--exr-layers", "--farm", "template"])
def test_a_layered_job_names_its_one_file_once(fake_deadline, tmp_path: Path, studio: Path, asked: str) -> None:
    package = two_pass_package(tmp_path / "invert")
    config = write_config(tmp_path, studio, fake_deadline.url)
    out = studio / "sh010" / "comfy"
    how: List[str] = {"--exr-layers": ["--exr-layers"], "--farm": ["--farm", "exr_layers=true"]}.get(asked, [])
    if asked == "template":
        (tmp_path / "layers.yaml").write_text("chunk_size: 8\nexr_layers: true\n")
        how = ["--template", str(tmp_path / "layers.yaml")]
    result = comfyfarm(config, "submit", "--workflow", str(package), "--input", plate(studio), "--frames", "1001-1024",
                       "--output", str(out / "sh010.####.exr"), *how)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    sent, _hand_back = fake_deadline.submissions()
    outputs = {key: value for key, value in sent["JobInfo"].items() if key.startswith("Output")}
    assert outputs == {"OutputDirectory0": str(out), "OutputFilename0": "sh010.####.exr"}
    job = fake_deadline.store.job_json(job_id)
    assert (job["OutDir"], job["OutFile"]) == ([str(out)], ["sh010.####.exr"])
    extra = [value for key, value in sent["JobInfo"].items() if key.startswith("ExtraInfoKeyValue")]
    assert "comfyfarm_passes=inverted,original" in extra and "comfyfarm_exr_layers=true" in extra
    record = read_job_record(sent["PluginInfo"]["JobRecord"])
    assert (record.output.pattern, record.output.exr_layers) == (str(out / "sh010.####.exr"), True)
    status = comfyfarm(config, "status", job_id)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[3:] == [f"  output (passes inverted, original as layers): {out}/sh010.####.exr",
                                              "  inverted frames: 0/24 done", "  original frames: 0/24 done"]


def test_without_exr_layers_the_passes_stay_sequences_of_their_own(fake_deadline, tmp_path: Path,
                                                                   studio: Path) -> None:
    config = write_config(tmp_path, studio, fake_deadline.url)
    out = studio / "sh010" / "comfy"
    result = comfyfarm(config, "submit", "--workflow", str(two_pass_package(tmp_path / "invert")), "--input",
                       plate(studio), "--output", str(out / "sh010.####.exr"), "--farm", "exr_layers=false")
    assert result.returncode == 0, result.stderr
    sent, _hand_back = fake_deadline.submissions()
    assert [sent["JobInfo"][f"OutputFilename{i}"] for i in (0, 1)] == ["sh010_inverted.####.exr",
                                                                        "sh010_original.####.exr"]
    assert "comfyfarm_exr_layers=true" not in sent["JobInfo"].values()


def test_exr_layers_with_a_tiff_output_is_refused_and_nothing_reaches_the_farm(fake_deadline, tmp_path: Path,
                                                                             studio: Path) -> None:
    config = write_config(tmp_path, studio, fake_deadline.url)
    output = studio / "sh010" / "comfy" / "sh010.####.tif"
    result = comfyfarm(config, "submit", "--workflow", str(two_pass_package(tmp_path / "invert")), "--input",
                       plate(studio), "--output", str(output), "--exr-layers")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"comfyfarm: output pattern '{output}': TIFF has no layers to hold the 2 passes of workflow invert (inverted, "
        "original) in one file: end it in .exr, or turn exr_layers off to write each pass as its own sequence")
    assert fake_deadline.submissions() == []
    assert list((studio / "comfyfarm" / "jobs").iterdir()) == []


def test_the_deadline_cloud_bundle_says_its_one_output_holds_the_passes_as_layers(tmp_path: Path,
                                                                                studio: Path) -> None:
    config = write_config(tmp_path, studio, "http://127.0.0.1:9")
    out = studio / "sh010" / "comfy"
    arguments = ["submit", "--backend", "deadline-cloud", "--dry-run", "--workflow",
                 str(two_pass_package(tmp_path / "invert")), "--input", plate(studio), "--output",
                 str(out / "sh010.####.exr")]
    layered = comfyfarm(config, *arguments, "--exr-layers")
    assert layered.returncode == 0, layered.stderr
    (bundle,) = json.loads(layered.stdout)["bundles"]
    assert bundle["template"]["description"].endswith(
        "; writes sh010.####.exr in OutputDir, one EXR per frame with the passes inverted, original as its layers")
    finish = bundle["template"]["steps"][-1]["script"]["actions"]["onRun"]["args"]
    assert "--output-pattern={{Param.OutputDir}}/sh010.####.exr" in finish
    assert {"name": "OutputDir", "value": str(out)} in bundle["parameterValues"]
    separate = comfyfarm(config, *arguments)
    assert "as its layers" not in json.loads(separate.stdout)["bundles"][0]["template"]["description"]
