"""A manifest's GPU needs: ``requirements.vram_gb`` (the GPU memory the workflow needs free: a Worker's
comfyfarm service checks it before a task) and ``requirements.model_family`` (for scheduling), into the job
record."""

from __future__ import annotations

import re

import pytest

from farm_plugin.jobrecord import JobRecord, OutputSpec, SourceSpec, WorkflowSpec
from farm_plugin.workflow.package import WorkflowPackageError, load_package


def with_requirements(**values):
    def edit(manifest):
        manifest.setdefault("requirements", {}).update(values)
    return edit


def test_the_gpu_needs_reach_the_job_record(make_package) -> None:
    package = load_package(make_package("invert", manifest_edit=with_requirements(vram_gb=12, model_family="sdxl")))
    assert (package.requirements.vram_gb, package.requirements.model_family) == (12.0, "sdxl")
    spec = WorkflowSpec.from_package(package, package.graph, {})
    record = JobRecord(job_id="j", name="j", workflow=spec, source=SourceSpec("/p.####.exr", (1,)),
                       output=OutputSpec("/o.####.exr"))
    assert JobRecord.from_dict(record.to_dict()).workflow.vram_gb == 12.0


def test_a_package_without_them_needs_nothing(make_package) -> None:
    package = load_package(make_package("invert"))
    assert (package.requirements.vram_gb, package.requirements.model_family) == (None, "")


@pytest.mark.parametrize(("values", "message"), [
    ({"vram_gb": 0}, "requirements.vram_gb: expected the GPU memory in GB the workflow needs (e.g. 12), got 0"),
    ({"vram_gb": "lots"}, "requirements.vram_gb: expected a number, got 'lots'"),
    ({"model_family": "Flux Dev"}, "requirements.model_family: 'Flux Dev' is not a family name: use lower-case "
                                   "letters, digits, _ and - (e.g. flux, sdxl, depth)"),
])
def test_mistakes_name_the_key_and_the_fix(make_package, values, message: str) -> None:
    folder = make_package("invert", manifest_edit=with_requirements(**values))
    with pytest.raises(WorkflowPackageError, match=re.escape(f"{folder / 'workflow.yaml'}: {message}")):
        load_package(folder)
