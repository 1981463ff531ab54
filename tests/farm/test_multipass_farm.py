"""A several-pass workflow on the emulated farm: each pass is its own sequence, named in the Deadline job's
outputs, listed in the completion record, and imported into the Flame double as its own clip; with exr_layers,
the passes are the layers of one EXR per frame, named once and imported once."""

from __future__ import annotations

import json
import time
from pathlib import Path

from farm_plugin.frames.image_io import probe
from flame_submitter.flame.relink import RelinkWatcher
from tests.flame_submitter.two_passes import two_pass_package

from .conftest import make_studio

FRAMES = range(1001, 1025)


def test_a_two_pass_job_on_2_workers_comes_back_into_flame_as_two_clips(farm, flame_session, tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=24)
    inbox = studio.hand_back()
    package = two_pass_package(tmp_path / "invert")
    job_id = studio.submit("--chunk-size", "6", "--project", "show_2026", "--name", "sh010_plate",
                           workflow=str(package), frames="1001-1024")
    outputs = studio.root / "sh010" / "comfy"
    job = farm.store.job_json(job_id)
    assert job["OutDir"] == [str(outputs), str(outputs)]
    assert job["OutFile"] == ["invert_inverted.####.exr", "invert_original.####.exr"]
    farm.start_workers(2)
    assert farm.wait_for_job(job_id, timeout_s=300) == "Completed"
    assert studio.outputs() == sorted(f"invert_{name}.{frame}.exr" for name in ("inverted", "original")
                                      for frame in FRAMES)

    deadline = time.monotonic() + 60
    while not list(inbox.glob("*.json")) and time.monotonic() < deadline:  # OnJobFinished runs after the job
        time.sleep(0.1)
    (path,) = inbox.glob("*.json")
    record = json.loads(path.read_text())
    assert [(p["name"], p["output_pattern"], p["frames"], p["missing_frames"]) for p in record["passes"]] == [
        ("inverted", f"{outputs}/invert_inverted.####.exr", list(FRAMES), []),
        ("original", f"{outputs}/invert_original.####.exr", list(FRAMES), [])]

    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    library = next(lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    (folder,) = library.folders
    assert [c.name.get_value() for c in folder.clips] == ["sh010_plate_invert_inverted_v001",
                                                         "sh010_plate_invert_original_v001"]
    assert all(c.start_frame == 1001 and c.duration.frame == 24 for c in folder.clips)


def test_a_two_pass_job_with_exr_layers_comes_back_into_flame_as_one_clip(farm, flame_session, tmp_path: Path) -> None:
    """The same job with ``--exr-layers``: one EXR per frame holding both passes, named once in the Deadline job,
    listed for both passes in the completion record, and imported ONCE, as one multi-channel clip."""
    studio = make_studio(farm, tmp_path, frame_count=24)
    inbox = studio.hand_back()
    package = two_pass_package(tmp_path / "invert")
    job_id = studio.submit("--chunk-size", "6", "--project", "show_2026", "--name", "sh010_plate", "--exr-layers",
                           workflow=str(package), frames="1001-1024")
    outputs = studio.root / "sh010" / "comfy"
    job = farm.store.job_json(job_id)
    assert (job["OutDir"], job["OutFile"]) == ([str(outputs)], ["invert.####.exr"])
    farm.start_workers(2)
    assert farm.wait_for_job(job_id, timeout_s=300) == "Completed"
    assert studio.outputs() == [f"invert.{frame}.exr" for frame in FRAMES]
    for frame in (1001, 1024):
        assert probe(outputs / f"invert.{frame}.exr").channel_names == (
            "R", "G", "B", "original.R", "original.G", "original.B")

    record = studio.record(inbox, job_id)
    assert [(p["name"], p["output_pattern"], p["frames"], p["channels"]) for p in record["passes"]] == [
        ("inverted", f"{outputs}/invert.####.exr", list(FRAMES), 3),
        ("original", f"{outputs}/invert.####.exr", list(FRAMES), 3)]

    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    library = next(lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    (folder,) = library.folders
    (clip,) = folder.clips
    assert clip.name.get_value() == "sh010_plate_invert_v001"
    assert clip.start_frame == 1001 and clip.duration.frame == 24
    assert [i.path for i in flame_session.imports] == [f"{outputs}/invert.[1001-1024].exr"]
    assert flame_session.console_messages[-1].message == (
        "comfyfarm: imported sh010_plate_invert_v001 (1001-1024) into ComfyUI Renders: one multi-channel clip, the "
        f"passes inverted, original as its layers; contact sheet {outputs}/invert_contact.jpg")
