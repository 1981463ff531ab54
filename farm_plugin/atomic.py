"""Writing a file so that a reader finds the old file or the new one, never a part of either.

The new content goes to a hidden temporary file beside the target, ``.<name>.<random>.tmp`` (with a suffix
after it where the writer picks the format by the extension: OpenImageIO's ``.<name>.<random>.tmp.exr``,
which no frame pattern ``<name>.####.exr`` matches), in the same folder so that the rename cannot cross file
systems; ``os.replace`` then puts it over the target in one step. When anything fails, the temporary file is
removed and the target is left as it was.

- :func:`atomic_path`: a temporary path for a writer that wants a file name (OpenImageIO, ``shutil.copyfile``);
- :func:`write_bytes_atomic`, :func:`write_text_atomic`: content in memory, with its permissions, ``fsync``
  before the rename where a crash must not leave an empty file, and ``overwrite=False`` for a file written
  once by whichever of several writers comes first.

Standard library only: the installer (``install/``) uses it on machines where nothing else is installed yet.
The Deadline plugin folders and the Flame hook, which import nothing of comfyfarm, keep their own few lines.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

logger = logging.getLogger(__name__)

StrPath = Union[str, "os.PathLike[str]"]

OWNER_ONLY = 0o600
"""The default mode of a file written here: ``tempfile.mkstemp``'s, read and written by its owner only."""


def temporary_beside(target: StrPath, *, suffix: str = "") -> Path:
    """A new hidden name beside ``target``: ``.<name>.<8 random hex digits>.tmp<suffix>``."""
    target = Path(target)
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{suffix}")


@contextmanager
def atomic_path(target: StrPath, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``target`` for the block to write; renamed over ``target`` when the block
    succeeds, removed when it fails (the exception goes on). ``suffix`` ends the temporary name."""
    temp = temporary_beside(target, suffix=suffix)
    try:
        yield temp
        os.replace(temp, target)
    except BaseException:
        _remove(temp)
        raise


def write_bytes_atomic(path: StrPath, data: bytes, *, mode: int = OWNER_ONLY, fsync: bool = False,
                       overwrite: bool = True) -> bool:
    """Write ``data`` to ``path`` atomically; the folder must exist. ``mode``: the file's permissions.
    ``fsync``: flush the file to the disk before the rename. ``overwrite=False``: never replace a file that
    is there, even one that appears while this one is written (the first writer's stands); returns False
    when one was there, True when ``path`` now holds ``data``."""
    target = Path(path)
    temp = temporary_beside(target)
    try:
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temp, mode)
        if overwrite:
            os.replace(temp, target)
            return True
        return _publish_once(temp, target)
    except BaseException:
        _remove(temp)
        raise


def write_text_atomic(path: StrPath, text: str, *, encoding: str = "utf-8", mode: int = OWNER_ONLY,
                      fsync: bool = False, overwrite: bool = True) -> bool:
    """:func:`write_bytes_atomic` for text."""
    return write_bytes_atomic(path, text.encode(encoding), mode=mode, fsync=fsync, overwrite=overwrite)


def _publish_once(temp: Path, target: Path) -> bool:
    """``temp`` becomes ``target`` unless ``target`` is there; ``temp`` is gone afterwards either way."""
    try:
        os.link(temp, target)  # unlike a rename, a link never replaces: if another writer was first, theirs stands
    except FileExistsError:
        return False
    except OSError:  # a share without hard links: check, then rename (a race here is harmless)
        if target.exists():
            return False
        os.replace(temp, target)
        return True
    finally:
        _remove(temp)
    return True


def _remove(temp: Path) -> None:
    try:
        temp.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove temporary file %s: %s", temp, exc)
