"""``python -m farm_plugin.runner``'s two streams, as the Deadline plugin reads them: the protocol on stdout
only, and a log on stderr none of whose lines reads as a protocol line (Deadline hands stderr to the plugin's
handlers too, in no order with stdout: tests/doubles/test_deadline_runtime_contract.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from farm_plugin.runner.progress import parse_progress_line

from .conftest import make_record, write_plate

REPO = Path(__file__).resolve().parents[3]


def test_a_failing_chunk_logs_its_error_on_stderr_in_lines_that_are_not_protocol_lines(fake_comfyui,
                                                                                      tmp_path: Path) -> None:
    fake_comfyui.set_faults(fail_node={"class_type": "ImageInvert", "exception_type": "RuntimeError",
                                       "message": "expected 4 channels, got 3"})
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr")).write(tmp_path / "job.json")
    result = subprocess.run([sys.executable, "-m", "farm_plugin.runner", "--job", str(record), "--frames", "1001",
                             "--comfyui-url", fake_comfyui.url, "--scratch", str(tmp_path / "s")],
                            capture_output=True, text=True, timeout=120, cwd=REPO)

    assert result.returncode == 1
    log = result.stderr.splitlines()
    assert any(line.startswith("farm_plugin.runner.chunk ERROR: frames 1001: ComfyUI node 2 (ImageInvert) failed")
               for line in log), result.stderr
    assert [line for line in log if parse_progress_line(line)] == []
    assert all(parse_progress_line(line) for line in result.stdout.splitlines())
    assert parse_progress_line(result.stdout.splitlines()[-1]).text == (  # type: ignore[union-attr]
        "ComfyUI node 2 (ImageInvert) failed: RuntimeError: expected 4 channels, got 3 (frames 1001)")
