from __future__ import annotations

from pathlib import Path

import pytest

from flame_submitter.jobs.templates import FailureDetection, TemplateError, load_template


def test_shipped_templates() -> None:
    default, heavy, preview = (load_template(n) for n in ("default", "heavy", "preview"))
    assert (default.plugin, default.chunk_size, default.gpus_per_task, default.preview_every) == ("ComfyUI", 10, 1, 0)
    assert (heavy.chunk_size, heavy.task_timeout_minutes) == (1, 240)
    assert heavy.task_timeout_minutes > default.task_timeout_minutes
    assert preview.preview_every == 10
    assert default.failure_detection == FailureDetection(task_errors=3, job_errors=20)


def test_overrides_are_checked_like_the_file() -> None:
    template = load_template("default").with_overrides({"priority": "70", "pool": "gpu", "chunk_size": 4})
    assert (template.priority, template.pool, template.chunk_size) == (70, "gpu", 4)
    with pytest.raises(TemplateError, match=r"command line: priority: 200 is not a whole number from 0 to 100"):
        load_template("default").with_overrides({"priority": 200})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chunk_size: 0\n", "chunk_size: 0 is not a whole number from 1 to 100000"),
        ("on_complete: Remove\n", "on_complete: 'Remove' is not one of Nothing, Delete, Archive"),
        ("pools: gpu\n", "unknown key(s) pools: the keys are chunk_size, concurrent_tasks, description,"),
        ("output_format: mov\n", "output_format: 'mov' is not one of exr, dpx, png, tiff (or null for the source's"),
        ("failure_detection: {task: 3}\n", "failure_detection: expected {task_errors: N, job_errors: N}"),
    ],
)
def test_template_mistakes_name_the_file_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "studio.yaml"
    path.write_text(text)
    with pytest.raises(TemplateError) as caught:
        load_template(str(path))
    assert str(caught.value).startswith(f"{path}: {message}")


def test_unknown_template_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "farm_a.yaml").write_text("priority: 40\n")
    assert load_template("farm_a", [str(tmp_path)]).priority == 40
    with pytest.raises(TemplateError, match="no job template 'fast': use one of default, farm_a, heavy, preview"):
        load_template("fast", [str(tmp_path)])
