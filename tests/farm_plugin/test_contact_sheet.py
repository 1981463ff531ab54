"""The contact sheet a hand-back writes beside a finished job's frames (farm_plugin/completion/contact_sheet.py): what
the JPEG shows, that the completion record names it in the artist's path, and that a sheet that cannot be made
never fails the hand-back."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import OpenImageIO as oiio
import pytest

from farm_plugin.completion import read_completion
from farm_plugin.completion.cli import run
from farm_plugin.completion.contact_sheet import SHEET_WIDTH, make_contact_sheet, sheet_frames, source_timecode
from farm_plugin.completion.record import CompletionRecord, build_completion
from farm_plugin.errors import ComfyfarmError
from farm_plugin.frames.colour import ColourPolicy, to_working
from farm_plugin.frames.image_io import probe, read_pixels, timecode_bcd, write_frame
from farm_plugin.frames.layers import layer_channel_names
from farm_plugin.jobrecord import JobRecord, OutputSpec, SourceSpec, WorkflowSpec, pass_patterns
from farm_plugin.workflow.package import load_package
from flame_submitter.cli.demo_plate import frame_timecode
from tests.flame_submitter.two_passes import FRAMES, REPO, job_record, two_pass_package

BACKGROUND = 0.12
SHOWN = (1001, 1012, 1024)  # first, middle and last of 1001-1024


def colour_of(name: str, index: int) -> Tuple[float, float, float]:
    """Each frame of each pass a colour of its own: a thumbnail of the wrong frame or pass shows."""
    if name == "inverted":
        return (0.05 + 0.02 * index, 0.18, 0.6 - 0.02 * index)
    return (1.4, 0.2 + 0.025 * index, -0.3)  # beyond 0..1: a data pass shows its values clipped


def two_pass_job(tmp_path: Path, *, data: bool = True, exr_layers: bool = False) -> JobRecord:
    """The two-pass invert job (``original`` marked data unless ``data`` is False), its farm paths under
    ``tmp_path/farm`` seen as ``/Volumes/projects`` on the artist's Mac, with an inbox."""
    package = load_package(two_pass_package(tmp_path / "invert"))
    record = job_record(package, str(tmp_path / "farm" / "renders" / "sh010_plate.####.exr"), exr_layers=exr_layers)
    passes = tuple(dataclasses.replace(spec, data=data and spec.name == "original") for spec in record.workflow.passes)
    return dataclasses.replace(
        record, workflow=dataclasses.replace(record.workflow, passes=passes), workstation_os="macos", farm_os="linux",
        path_mappings=({"linux": str(tmp_path / "farm"), "macos": "/Volumes/projects"},),
        inbox=str(tmp_path / "farm" / "inbox"))


def render(record: JobRecord, frames: Sequence[int] = FRAMES) -> None:
    """Every pass's frames where the farm writes them (16x9 EXRs with SMPTE timecode 01:00:00:00 + index at 24 fps),
    each a flat ``colour_of`` its pass and frame; with ``exr_layers`` both passes in one file."""
    names = [spec.name for spec in record.workflow.passes]
    patterns = pass_patterns(record)
    for index, frame in enumerate(frames):
        header = {"smpte:TimeCode": [timecode_bcd(frame_timecode(index, 24)), 0], "FramesPerSecond": (24, 1)}
        if record.output.exr_layers:
            pixels = np.concatenate([np.full((9, 16, 3), colour_of(name, index), np.float32) for name in names], 2)
            path = Path(patterns[names[0]].path(frame))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_frame(path, pixels, file_format="exr", metadata=header,
                        channel_names=layer_channel_names([(name, 3) for name in names]))
            continue
        for name in names:
            path = Path(patterns[name].path(frame))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_frame(path, np.full((9, 16, 3), colour_of(name, index), np.float32), file_format="exr",
                        metadata=header)


def hand_back(tmp_path: Path, record: JobRecord, capsys) -> Tuple[int, List[str], dict]:
    """Run the hand-back command as the Deadline plugin does; its exit status, its log lines and the record."""
    job = record.write(tmp_path / "farm" / "jobs" / "job.json")
    status = run(["--job", str(job), "--deadline-job-id", "64f0a1"])
    lines = capsys.readouterr().out.splitlines()
    return status, lines, json.loads((tmp_path / "farm" / "inbox" / "64f0a1.json").read_text())


def bands(mask: np.ndarray) -> List[Tuple[int, int]]:
    """The runs of True in ``mask``: (start, end) pairs."""
    runs, start = [], None
    for index, value in enumerate(list(mask) + [False]):
        if value and start is None:
            start = index
        elif not value and start is not None:
            runs.append((start, index))
            start = None
    return runs


def thumbnails(sheet: np.ndarray) -> List[List[np.ndarray]]:
    """The thumbnails a viewer sees on ``sheet``, found by their pixels (rows of the sheet more than half covered by
    something other than the background; no caption covers half a row), as [row][column] mean colours of their
    insides (3 pixels in from the edges, away from JPEG's ringing)."""
    not_background = np.abs(sheet - BACKGROUND).max(axis=2) > 0.06
    rows = [band for band in bands(not_background.mean(axis=1) > 0.5) if band[1] - band[0] > 20]
    found = []
    for top, bottom in rows:
        columns = [band for band in bands(not_background[top:bottom].mean(axis=0) > 0.9) if band[1] - band[0] > 20]
        found.append([sheet[top + 3:bottom - 3, left + 3:right - 3].reshape(-1, 3).mean(axis=0)
                      for left, right in columns])
    return found


def displayed(record: JobRecord, name: str, frame: int, *, data: bool) -> np.ndarray:
    """What a viewer should see of a flat frame: its colour through the frame's colour policy to sRGB (a data pass:
    as it is), clipped to 0..1."""
    path = pass_patterns(record)[name].path(frame)
    pixel = np.asarray(colour_of(name, frame - FRAMES[0]), np.float32).reshape(1, 1, 3)
    shown = pixel if data else to_working(pixel, ColourPolicy.default_for(probe(path)))
    return np.clip(shown.reshape(3), 0.0, 1.0)


@pytest.mark.parametrize("exr_layers", [False, True], ids=["sequences", "layers"])
def test_a_finished_two_pass_job_gets_a_sheet_of_each_passs_first_middle_and_last_frame(
        tmp_path: Path, capsys, exr_layers: bool) -> None:
    record = two_pass_job(tmp_path, exr_layers=exr_layers)
    render(record)
    status, lines, data = hand_back(tmp_path, record, capsys)
    farm = tmp_path / "farm" / "renders" / "sh010_plate_contact.jpg"
    assert status == 0
    assert lines[0] == f"comfyfarm relink: contact sheet {farm}"
    assert lines[1].startswith(f"comfyfarm relink: wrote {tmp_path}/farm/inbox/64f0a1.json: completed")
    assert data["contact_sheet"] == "/Volumes/projects/renders/sh010_plate_contact.jpg"  # the artist's path
    assert data["schema"] == 3
    info = probe(farm)
    assert (info.format, info.width, info.channels) == ("jpeg", SHEET_WIDTH, 3)
    assert [p.name for p in farm.parent.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    sheet = read_pixels(farm)
    cells = thumbnails(sheet)
    assert [len(row) for row in cells] == [3, 3]  # rows: inverted, original; columns: 1001, 1012, 1024
    for row, (name, data_pass) in enumerate((("inverted", False), ("original", True))):
        for column, frame in enumerate(SHOWN):
            expected = displayed(record, name, frame, data=data_pass)
            assert cells[row][column] == pytest.approx(expected, abs=3 / 255), (name, frame)
    # the colour pass is converted to sRGB for viewing (0.05 linear shows as 0.25), the data pass is not
    assert cells[0][0][0] == pytest.approx(0.248, abs=3 / 255)
    assert cells[1][0][1] == pytest.approx(0.2, abs=3 / 255)


def test_frame_numbers_timecodes_and_pass_names_are_burnt_in(tmp_path: Path) -> None:
    record = two_pass_job(tmp_path)
    render(record)
    completion = build_completion(record, deadline_job_id="j", job_failed=False)
    sheet = make_contact_sheet(record, completion.passes)
    assert sheet.labels
    assert [(c.pass_name, c.frame, c.timecode) for c in sheet.cells] == [
        ("inverted", 1001, "01:00:00:00"), ("inverted", 1012, "01:00:00:11"), ("inverted", 1024, "01:00:00:23"),
        ("original", 1001, "01:00:00:00"), ("original", 1012, "01:00:00:11"), ("original", 1024, "01:00:00:23")]
    pixels = read_pixels(sheet.path)
    captions = []
    for cell in sheet.cells:
        x, y, width, height = cell.box
        caption = pixels[y + height + 2:y + height + 22, x:x + width].mean(axis=2)
        assert (caption > 0.7).sum() > 40, cell  # text there
        captions.append(caption > 0.5)
        header = pixels[y - 22:y - 2, 8:120].mean(axis=2)
        assert (header > 0.7).sum() > 20, cell.pass_name
    # the same frame of the other pass reads the same (but for JPEG's noise); "1012 01:00:00:11" differs
    assert (captions[0] != captions[3]).sum() < 10 < (captions[0] != captions[1]).sum()


def test_without_a_font_the_numbers_are_drawn_in_bitmap_digits(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(oiio.ImageBufAlgo, "render_text", lambda *args, **kwargs: False)
    record = two_pass_job(tmp_path)
    render(record)
    status, lines, data = hand_back(tmp_path, record, capsys)
    farm = tmp_path / "farm" / "renders" / "sh010_plate_contact.jpg"
    assert status == 0 and data["contact_sheet"] == "/Volumes/projects/renders/sh010_plate_contact.jpg"
    assert lines[0] == (f"comfyfarm relink: contact sheet {farm} (no font: frame numbers and timecodes in bitmap "
                        "digits, pass names left out)")
    pixels = read_pixels(farm)
    sheet = make_contact_sheet(record, build_completion(record, deadline_job_id="j", job_failed=False).passes)
    x, y, width, height = sheet.cells[0].box
    assert (pixels[y + height + 2:y + height + 22, x:x + width].mean(axis=2) > 0.7).sum() > 40  # digits drawn
    assert (pixels[y - 22:y - 2, 8:120].mean(axis=2) > 0.7).sum() == 0  # no pass name


def test_a_frame_that_cannot_be_read_makes_no_sheet_and_the_hand_back_still_succeeds(tmp_path: Path, capsys) -> None:
    record = two_pass_job(tmp_path)
    render(record)
    damaged = Path(pass_patterns(record)["original"].path(1012))
    damaged.write_bytes(damaged.read_bytes()[:-40])  # its header reads (the frame counts as there), its pixels not
    with pytest.raises(ComfyfarmError) as reading:
        read_pixels(damaged)
    status, lines, data = hand_back(tmp_path, record, capsys)
    assert status == 0
    assert lines[0] == f"comfyfarm relink: warning: no contact sheet: frame 1012 of the original pass cannot be read " \
                       f"({reading.value})"
    assert lines[1].startswith(f"comfyfarm relink: wrote {tmp_path}/farm/inbox/64f0a1.json: completed")
    assert data["status"] == "completed" and "contact_sheet" not in data
    assert sorted(p.name for p in (tmp_path / "farm" / "renders").iterdir() if not p.name.endswith(".exr")) == []


def test_an_incomplete_or_failed_job_gets_no_sheet_and_no_line(tmp_path: Path, capsys) -> None:
    record = two_pass_job(tmp_path)
    render(record, FRAMES[:-1])
    status, lines, data = hand_back(tmp_path, record, capsys)
    assert status == 0 and data["status"] == "completed" and data["missing_frames"] == [1024]
    assert "contact_sheet" not in data and len(lines) == 1 and "contact sheet" not in lines[0]
    assert not (tmp_path / "farm" / "renders" / "sh010_plate_contact.jpg").exists()


def test_a_repeated_hand_back_makes_no_second_sheet(tmp_path: Path, capsys) -> None:
    record = two_pass_job(tmp_path)
    render(record)
    hand_back(tmp_path, record, capsys)
    sheet = tmp_path / "farm" / "renders" / "sh010_plate_contact.jpg"
    os.utime(sheet, (1, 1))
    status = run(["--job", str(tmp_path / "farm" / "jobs" / "job.json"), "--deadline-job-id", "64f0a1"])
    assert status == 0
    assert capsys.readouterr().out.strip() == "comfyfarm relink: the record for job 64f0a1 was already written: " \
                                              "nothing new"
    assert sheet.stat().st_mtime == 1


def test_records_without_a_sheet_and_from_a_newer_comfyfarm_read(tmp_path: Path) -> None:
    record = two_pass_job(tmp_path)
    render(record)
    completion = build_completion(record, deadline_job_id="j", job_failed=False)
    assert completion.contact_sheet is None
    text = completion.to_json()
    assert "contact_sheet" not in json.loads(text)  # no sheet, no field
    older = {**json.loads(text), "schema": 2}
    (tmp_path / "old.json").write_text(json.dumps(older))
    assert read_completion(tmp_path / "old.json").contact_sheet is None
    newer = {**json.loads(text), "contact_sheet": "/x/sh010_contact.jpg", "schema": 4, "a_later_field": [1]}
    newer["passes"][0]["a_later_pass_field"] = "x"
    (tmp_path / "new.json").write_text(json.dumps(newer))
    read = read_completion(tmp_path / "new.json")
    assert isinstance(read, CompletionRecord) and read.contact_sheet == "/x/sh010_contact.jpg"
    assert read.passes == completion.passes


def test_which_frames_and_which_timecodes() -> None:
    assert sheet_frames(range(1001, 1025)) == [1001, 1012, 1024]
    assert sheet_frames([1001, 1002]) == [1001, 1002]
    assert sheet_frames([7]) == [7]
    package = load_package(REPO / "workflows" / "invert")
    record = JobRecord(job_id="j", name="sh010 - Invert",
                       workflow=WorkflowSpec.from_package(package, package.graph, {}),
                       source=SourceSpec("/p/plate.####.exr", FRAMES, fps=24.0, timecode="01:00:00:00"),
                       output=OutputSpec("/p/out.####.exr"))
    assert source_timecode(record, 1001) == "01:00:00:00"  # for frames whose header has none
    assert source_timecode(record, 1025) == "01:00:01:00"
    assert source_timecode(dataclasses.replace(record, source=dataclasses.replace(record.source, timecode=None)),
                           1001) is None
