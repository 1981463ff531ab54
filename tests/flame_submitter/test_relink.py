"""The relink watcher in the Flame double: completion records become versioned clips, once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from farm_plugin.completion import CompletionRecord, write_completion
from farm_plugin.frames.image_io import timecode_bcd, write_frame
from flame_submitter.cli.demo_plate import frame_timecode
from flame_submitter.flame.relink import RelinkWatcher

from .conftest import renders_folder


def render(folder: Path, frames: Iterable[int], name: str = "invert") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        write_frame(folder / f"{name}.{frame}.exr", np.full((9, 16, 3), 0.5, np.float32), file_format="exr",
                    metadata={"smpte:TimeCode": [timecode_bcd(frame_timecode(index, 24)), 0],
                              "FramesPerSecond": (24, 1)})
    return str(folder / f"{name}.####.exr")


def record(tmp_path: Path, job: str, *, project: str = "show_2026", status: str = "completed",
           frames=tuple(range(1001, 1025)), missing=(), part: str = "main", reason: str = "") -> CompletionRecord:
    pattern = render(tmp_path / "renders" / job, frames)
    return CompletionRecord(
        deadline_job_id=job, job_key=f"key-{job}", status=status, reason=reason, part=part, output_pattern=pattern,
        frames=tuple(frames), missing_frames=tuple(missing), width=16, height=9, source_pattern="/plates/p.####.exr",
        source_frames=tuple(frames) + tuple(missing), source_timecode="01:00:00:00", fps=24.0, workflow="invert",
        workflow_title="Invert", parameters={}, relink={"project": project, "clip_name": "sh010_plate", "user": "ann"})




def test_finished_renders_come_back_as_versioned_clips_once(flame_session, inbox: Path, tmp_path: Path) -> None:
    write_completion(record(tmp_path, "job1"), inbox)
    write_completion(record(tmp_path, "job2"), inbox)
    watcher = RelinkWatcher(flame_session.flame, inbox, user="ann")
    watcher.start()
    flame_session.pump_idle(seconds=1)
    clips = renders_folder(flame_session).clips
    assert [c.name.get_value() for c in clips] == ["sh010_plate_invert_v001", "sh010_plate_invert_v002"]
    clip = clips[0]
    assert clip.start_frame == 1001 and clip.duration.frame == 24
    assert str(clip.start_time) == "01:00:00+00"
    assert sorted(p.name for p in (inbox / "imported").iterdir()) == ["job1.json", "job2.json"]
    assert list(inbox.glob("*.json")) == []
    # the Deadline event fires again for job1: nothing new is written, nothing is imported twice
    assert write_completion(record(tmp_path, "job1"), inbox) is None
    flame_session.pump_idle(seconds=10)
    assert len(renders_folder(flame_session).clips) == 2
    assert any("imported sh010_plate_invert_v002 (1001-1024)" in m.message for m in flame_session.console_messages)


def test_records_written_while_flame_was_closed_import_at_the_next_start(flame_session_factory, inbox: Path,
                                                                         tmp_path: Path) -> None:
    first = flame_session_factory()
    RelinkWatcher(first.flame, inbox, user="ann").start()
    first.pump_idle(seconds=1)
    first.close()
    write_completion(record(tmp_path, "late"), inbox)  # the farm finishes overnight
    second = flame_session_factory()
    RelinkWatcher(second.flame, inbox, user="ann").start()
    second.pump_idle(seconds=1)
    assert [c.name.get_value() for c in renders_folder(second).clips] == ["sh010_plate_invert_v001"]


def test_a_failed_job_is_a_console_message_and_imports_nothing(flame_session, inbox: Path, tmp_path: Path) -> None:
    write_completion(record(tmp_path, "bad", status="failed", reason="the Deadline job bad failed: see its error "
                            "reports"), inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    (message,) = [m for m in flame_session.console_messages if "failed on the farm" in m.message]
    assert message.type == "error"
    assert message.message == ("comfyfarm: sh010_plate · Invert failed on the farm (job bad): the Deadline job bad "
                               "failed: see its error reports")
    assert flame_session.imports == []
    assert (inbox / "imported" / "bad.json").is_file()


def test_an_incomplete_output_imports_nothing(flame_session, inbox: Path, tmp_path: Path) -> None:
    write_completion(record(tmp_path, "holes", frames=tuple(range(1001, 1010)), missing=(1010, 1011)), inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    assert flame_session.imports == []
    assert any("2 frame(s) missing (1010-1011); nothing imported" in m.message
               for m in flame_session.console_messages)


def test_another_projects_records_are_left_alone(flame_session, inbox: Path, tmp_path: Path) -> None:
    write_completion(record(tmp_path, "theirs", project="other_show"), inbox)
    write_completion(record(tmp_path, "mine"), inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=30)
    assert (inbox / "theirs.json").is_file()
    assert [p.name for p in (inbox / "imported").iterdir()] == ["mine.json"]
    assert json.loads((inbox / "theirs.json").read_text())["relink"]["project"] == "other_show"


def test_one_record_per_idle_tick(flame_session, inbox: Path, tmp_path: Path) -> None:
    for job in ("a", "b", "c"):
        write_completion(record(tmp_path, job), inbox)
    watcher = RelinkWatcher(flame_session.flame, inbox, user="ann")
    watcher.running = True
    watcher._tick()  # what one idle event does
    assert len(flame_session.imports) == 1
    assert [e.delay_seconds for e in flame_session.idle_queue] == [0]  # more to do: straight back next idle
    flame_session.pump_idle(seconds=0)
    assert len(flame_session.imports) == 3
    assert [e.delay_seconds for e in flame_session.idle_queue] == [5]  # nothing left: poll every 5 s


def test_a_closed_renders_library_is_opened_to_import_into_it(flame_session, inbox: Path, tmp_path: Path) -> None:
    """A closed library can be neither read nor written (PyLibrary.opened / open(), stubs/flame.pyi): the watcher
    opens it instead of failing the import."""
    flame_session.workspace.create_library("ComfyUI Renders").close()
    write_completion(record(tmp_path, "job1"), inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    (library,) = [lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders"]
    assert library.opened is True
    assert [c.name.get_value() for c in renders_folder(flame_session).clips] == ["sh010_plate_invert_v001"]
    assert (inbox / "imported" / "job1.json").is_file()


def test_another_projects_records_are_imported_when_it_opens(flame_session, inbox: Path, tmp_path: Path) -> None:
    """Flame runs one watcher for every project the artist opens (app_initialized after each project load): the
    records set aside as show_b's while show_2026 was open are imported when show_b opens, by the watcher on
    its own, or at once when told (``reset``)."""
    write_completion(record(tmp_path, "for_b", project="show_b"), inbox)
    watcher = RelinkWatcher(flame_session.flame, inbox, user="ann")
    watcher.start()
    flame_session.pump_idle(seconds=30)
    assert (inbox / "for_b.json").is_file() and flame_session.imports == []
    flame_session.switch_project("show_b")
    flame_session.pump_idle(seconds=10)
    assert [c.name.get_value() for c in renders_folder(flame_session).clips] == ["sh010_plate_invert_v001"]
    assert (inbox / "imported" / "for_b.json").is_file()
    write_completion(record(tmp_path, "for_2026"), inbox)
    flame_session.pump_idle(seconds=10)
    assert (inbox / "for_2026.json").is_file()  # show_2026's, not show_b's
    flame_session.switch_project("show_2026")
    watcher.reset()
    assert watcher.import_next() is not None and (inbox / "imported" / "for_2026.json").is_file()
