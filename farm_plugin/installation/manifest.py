"""The installation manifest: every file one role's installation wrote, with its hash and what it replaced.

``<state>/<role>.json`` (see layout.py for ``<state>``) holds, for each installed file (absolute path), the
SHA-256 of what comfyfarm wrote there and, when a file was already there before comfyfarm, where that file
is kept (restored on uninstall). It also lists the folders the installation created, so that uninstall
removes those and nothing else. A file whose hash no longer matches was changed by hand since.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from farm_plugin.atomic import write_text_atomic
from farm_plugin.errors import ServiceError

logger = logging.getLogger(__name__)

MANIFEST_SCHEMA = 1
HASH_CHUNK_BYTES = 1 << 20


class ManifestError(ServiceError):
    """A manifest cannot be read: the message names the file and the fix."""


@dataclass(frozen=True)
class InstalledFile:
    """One file comfyfarm wrote: its hash, and where the file it replaced is kept (None: there was none)."""

    sha256: str
    backup: Optional[str] = None


@dataclass
class Manifest:
    role: str
    version: str
    files: Dict[str, InstalledFile] = field(default_factory=dict)
    dirs: List[str] = field(default_factory=list)  # folders this installation created, parents first
    kept: List[str] = field(default_factory=list)  # backups of files changed by hand, which comfyfarm never deletes
    pending: Dict[str, str] = field(default_factory=dict)  # while files are written: their previous hashes
    details: Dict[str, Any] = field(default_factory=dict)  # what each role needs to find again (pythons, ...)
    schema: int = MANIFEST_SCHEMA

    def to_dict(self) -> Dict[str, Any]:
        return {
            "schema": self.schema,
            "product": "comfyfarm",
            "role": self.role,
            "version": self.version,
            "details": self.details,
            "dirs": list(self.dirs),
            "kept": list(self.kept),
            "pending": dict(sorted(self.pending.items())),
            "files": {path: {"sha256": f.sha256, "backup": f.backup} for path, f in sorted(self.files.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str) -> Manifest:
        if data.get("product") != "comfyfarm" or not isinstance(data.get("schema"), int):
            raise ManifestError(f"{origin}: not a comfyfarm installation manifest")
        if data["schema"] > MANIFEST_SCHEMA:
            raise ManifestError(f"{origin}: written by a newer comfyfarm ({data.get('version')}): use that "
                                "comfyfarm's installer and doctor")
        try:
            files = {str(path): InstalledFile(str(entry["sha256"]), entry.get("backup"))
                     for path, entry in dict(data["files"]).items()}
            return cls(role=str(data["role"]), version=str(data["version"]), files=files,
                       dirs=[str(d) for d in data.get("dirs", [])], kept=[str(k) for k in data.get("kept", [])],
                       pending={str(k): str(v) for k, v in dict(data.get("pending") or {}).items()},
                       details=dict(data.get("details") or {}),
                       schema=int(data["schema"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{origin}: damaged installation manifest ({exc}): reinstall this role") from exc

    def is_ours(self, path: str, sha256: str) -> bool:
        """Whether ``sha256`` is what comfyfarm wrote at ``path`` (or wrote before an interrupted upgrade)."""
        entry = self.files.get(path)
        return entry is not None and sha256 in (entry.sha256, self.pending.get(path))

    def modified(self) -> List[str]:
        """Installed files that are still there but no longer hold what comfyfarm wrote."""
        return [path for path in sorted(self.files)
                if Path(path).is_file() and not self.is_ours(path, file_sha256(Path(path)))]

    def missing(self) -> List[str]:
        return [path for path in sorted(self.files) if not Path(path).is_file()]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(path: Path) -> Optional[Manifest]:
    """The manifest at ``path``, or None when there is none (nothing installed there)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}): reinstall this role") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: not a comfyfarm installation manifest")
    return Manifest.from_dict(data, str(path))


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write atomically (temp file + rename), so that a crash leaves the old manifest or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(manifest.to_dict(), indent=2) + "\n", mode=0o644)
    logger.debug("wrote installation manifest %s", path)
