"""What a preview asks for and what it gives back, shared by the dialog, Flame, the farm path and the command.

A preview renders the frame under Flame's positioner (or a chosen frame) with the dialog's current settings:
one frame for a per-frame workflow; for a sequence workflow a short window around it, one window of the
workflow's ``sequence.context`` frames, centred on the frame and kept inside the clip (:func:`preview_frames`).
``comfyfarm preview`` renders it (on the local ComfyUI) or, given the frames a farm job rendered
(``--rendered``), only makes the pictures: JPEGs for the screen of the source frame and of each pass, the same
width, and prints one JSON line that :meth:`PreviewResult.from_json` reads. Nothing here imports Qt, OpenImageIO
or ``flame``: the dialog runs inside Flame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from farm_plugin.errors import BadInput
from farm_plugin.workflow.package import WorkflowPackage

PREVIEW_WIDTH = 960  # pixels: the pictures fill the dialog's preview at its default size
RESULT_PREFIX = "comfyfarm-preview: "  # the command's last stdout line: this, then the JSON of the result


class PreviewError(BadInput):
    """A preview cannot be made as asked: the message names the value and the fix."""


def preview_frames(package: WorkflowPackage, frame: int, first: int, last: int) -> Tuple[int, ...]:
    """The source frames a preview of ``frame`` renders, within the clip's ``first``..``last``: the frame itself,
    or for a sequence workflow one window of ``sequence.context`` frames around it (fewer in a shorter clip).
    Raises PreviewError when ``frame`` is outside the clip."""
    if not first <= frame <= last:
        raise PreviewError(f"frame {frame} is not in the clip ({first}-{last}): choose a frame between them")
    if package.mode != "sequence" or package.sequence is None:
        return (frame,)
    length = min(package.sequence.context_frames, last - first + 1)
    start = max(first, min(frame - length // 2, last - length + 1))
    return tuple(range(start, start + length))


@dataclass(frozen=True)
class PreviewImage:
    """One picture of a preview: ``name`` (``source``, or the pass's name), a JPEG at ``path``, of ``frame``."""

    name: str
    path: str
    frame: int


@dataclass(frozen=True)
class PreviewResult:
    """A finished preview (``error`` empty) or why there is none (``error``: the artist's words, ComfyUI's own
    error included where it failed). ``seconds``: the render's wall time; ``startup_seconds``: the time it took to
    start ComfyUI before it (0 for one that was running); ``where``: what rendered it."""

    frame: int = 0
    frames: Tuple[int, ...] = ()
    seconds: float = 0.0
    startup_seconds: float = 0.0
    where: str = ""
    source: Optional[PreviewImage] = None
    passes: Tuple[PreviewImage, ...] = ()
    warnings: Tuple[str, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def to_json(self) -> str:
        return json.dumps({
            "frame": self.frame, "frames": list(self.frames), "seconds": round(self.seconds, 3),
            "startup_seconds": round(self.startup_seconds, 3), "where": self.where,
            "source": _image_json(self.source), "passes": [_image_json(p) for p in self.passes],
            "warnings": list(self.warnings), "error": self.error,
        })

    @classmethod
    def from_json(cls, text: str) -> PreviewResult:
        """The result a ``comfyfarm preview`` printed (the JSON after ``RESULT_PREFIX``). Raises PreviewError."""
        try:
            data = json.loads(text)
            source = _image(data.get("source"))
            return cls(frame=int(data.get("frame", 0)), frames=tuple(int(f) for f in data.get("frames", ())),
                       seconds=float(data.get("seconds", 0.0)),
                       startup_seconds=float(data.get("startup_seconds", 0.0)), where=str(data.get("where", "")),
                       source=source,
                       passes=tuple(p for p in (_image(item) for item in data.get("passes", ())) if p is not None),
                       warnings=tuple(str(w) for w in data.get("warnings", ())), error=str(data.get("error", "")))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise PreviewError(f"the preview's answer cannot be read ({exc}): {text[:200]!r}") from exc

    @classmethod
    def from_output(cls, stdout: str) -> Optional[PreviewResult]:
        """The result in a ``comfyfarm preview``'s standard output (its last ``RESULT_PREFIX`` line), or None."""
        lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        return cls.from_json(lines[-1][len(RESULT_PREFIX):]) if lines else None


def _image_json(image: Optional[PreviewImage]) -> Optional[Mapping[str, Any]]:
    return None if image is None else {"name": image.name, "path": image.path, "frame": image.frame}


def _image(data: Any) -> Optional[PreviewImage]:
    if not data:
        return None
    return PreviewImage(name=str(data["name"]), path=str(data["path"]), frame=int(data["frame"]))


@dataclass(frozen=True)
class PreviewSettings:
    """What a preview renders with, in the terms ``comfyfarm preview`` takes: the same as the job would get.
    ``key`` is what makes a preview stale when it changes (the picture depends on nothing else)."""

    workflow_path: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    set_arguments: Tuple[str, ...] = ()
    output_format: Optional[str] = None
    exr_layers: bool = False

    @property
    def key(self) -> Tuple[Any, ...]:
        return (self.workflow_path, tuple(sorted((k, repr(v)) for k, v in self.parameters.items())),
                self.output_format, self.exr_layers)

    def arguments(self) -> List[str]:
        """The command-line arguments for these settings: ``--workflow``, ``--set``…, ``--format``, ``--exr-layers``."""
        arguments = ["--workflow", self.workflow_path]
        for assignment in self.set_arguments:
            arguments += ["--set", assignment]
        if self.output_format:
            arguments += ["--format", self.output_format]
        if self.exr_layers:
            arguments.append("--exr-layers")
        return arguments


def image_names(result: PreviewResult) -> Sequence[str]:
    """The pictures a result offers, source first."""
    return ([result.source.name] if result.source else []) + [p.name for p in result.passes]
