"""``comfyfarm submit --backend deadline-cloud``: the planned jobs as OpenJD job bundles, written or submitted.

The job folders are written exactly as for Deadline 10 (job_builder.JobFolders), then one bundle per job:
into ``--bundle-dir`` (nothing is submitted), or into ``<job folder>/bundle`` and submitted with the Deadline
Cloud CLI. Everything that can be checked is checked first (the bundle folder is free, the CLI is installed
and configured); when writing or the first submission fails, what was written is removed again.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from flame_submitter.deadline_cloud.bundle import (
    PARAMETER_VALUES_FILE,
    TEMPLATE_FILE,
    BundleOptions,
    JobBundle,
    build_bundles,
    bundle_folders,
    check_free,
)
from flame_submitter.deadline_cloud.cli import DeadlineCloudCLI, DeadlineCloudError, submit_bundle
from flame_submitter.jobs.builder import JobFolders, PlannedJob

logger = logging.getLogger(__name__)

JOB_FOLDER_BUNDLE = "bundle"


class PartlySubmitted(DeadlineCloudError):
    """Some bundles were submitted before one failed: those jobs exist."""


@dataclass(frozen=True)
class WrittenBundle:
    bundle: JobBundle
    folder: Path
    job_folder: Path

    def run_command(self) -> str:
        """How to run it on this machine with the OpenJD CLI (``pip install openjd-cli``)."""
        values = " ".join(f"-p {shlex.quote(f'{name}={value}')}" for name, value in self.bundle.values().items())
        return f"openjd run {shlex.quote(str(self.folder / TEMPLATE_FILE))} {values}"


def write_bundles(jobs: Sequence[PlannedJob], options: BundleOptions,
                  bundle_dir: Optional[Path] = None) -> List[WrittenBundle]:
    """Write the job folders and a bundle per job (into ``bundle_dir``, else into each job folder)."""
    bundles = build_bundles(jobs, options)
    job_folders = {job.key: job.folder for job in jobs}
    if bundle_dir is not None:
        folders = bundle_folders(bundles, bundle_dir)
    else:
        folders = [job_folders[b.key] / JOB_FOLDER_BUNDLE for b in bundles]
    for folder in folders:
        check_free(folder)
    made = sorted({path for folder in folders for path in (folder, *folder.parents) if not path.exists()},
                  key=lambda path: len(path.parts), reverse=True)  # deepest first
    written_folders = JobFolders(jobs)
    written_folders.write()
    try:
        return [WrittenBundle(b, b.write(f), job_folders[b.key]) for b, f in zip(bundles, folders)]
    except BaseException:
        written_folders.remove()
        for folder in folders:  # checked free above: what is there now is this call's
            for name in (TEMPLATE_FILE, PARAMETER_VALUES_FILE):
                with contextlib.suppress(OSError):  # FileNotFoundError, or NotADirectoryError for a file there
                    (folder / name).unlink()
        for path in made:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def submit_bundles(jobs: Sequence[PlannedJob], options: BundleOptions,
                   cli: DeadlineCloudCLI) -> List[Tuple[WrittenBundle, str]]:
    """Write and submit; returns each bundle with its Deadline Cloud job id. When the first submission fails
    nothing stays behind; a later failure keeps what was submitted and says so."""
    written = write_bundles(jobs, options)
    ids: List[str] = []
    for item in written:
        values = {v["name"]: v["value"] for v in item.bundle.parameter_values}
        retries = values.get("deadline:maxRetriesPerTask")
        try:
            job_id = submit_bundle(cli, item.folder, name=item.bundle.name, priority=int(values["deadline:priority"]),
                                   max_retries_per_task=int(retries) if retries is not None else None)
        except DeadlineCloudError as exc:
            if not ids:
                for folder in {w.job_folder for w in written}:
                    shutil.rmtree(folder, ignore_errors=True)
                raise
            raise PartlySubmitted(f"{exc}; already submitted: {', '.join(ids)} (their job folders are kept)") from exc
        logger.info("submitted %s as Deadline Cloud job %s", item.bundle.key, job_id)
        ids.append(job_id)
    return list(zip(written, ids))
