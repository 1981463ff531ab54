"""The one root of comfyfarm's errors, the categories under it, and the exit codes.

Every exception that ``farm_plugin`` and ``flame_submitter`` define (and the installer's ``comfyfarm_install``)
descends from :class:`ComfyfarmError`. Each keeps its own name and module; the category above it says what
kind of failure it is, so a caller catches a category (``except BadInput``) instead of listing classes, and
the command line maps a category to an exit status in one place (:func:`exit_code`)::

    ComfyfarmError              an error comfyfarm raises on purpose: its message says what went wrong and the fix
    ├── BadInput                what the user gave is wrong: an option, a path, a package, the configuration (2)
    │    ├── UsageError               a command-line option, or a combination, that cannot work (here)
    │    ├── ConfigError              flame_submitter.config
    │    ├── PathMappingError         farm_plugin.paths (also a ValueError)
    │    ├── WorkflowPackageError     farm_plugin.workflow.package
    │    ├── ParameterError           farm_plugin.workflow.params (also a ValueError)
    │    ├── ObjectInfoError          farm_plugin.workflow.object_info
    │    ├── FrameError …             farm_plugin.frames.errors: frame lists, patterns, plates, colour
    │    ├── RetimeError              farm_plugin.frames.retime (also a ValueError)
    │    ├── PreflightError           farm_plugin.runner.preflight
    │    ├── JobRecordError           farm_plugin.jobrecord
    │    ├── SessionStateError        farm_plugin.openjd.env
    │    ├── TemplateError            flame_submitter.jobs.templates
    │    ├── SubmitError              flame_submitter.deadline.submit
    │    ├── BundleError              flame_submitter.deadline_cloud.bundle
    │    ├── SelectionError           flame_submitter.flame.sources
    │    ├── FolderImportError        flame_submitter.flame.bundle_import
    │    └── InstallError             install/comfyfarm_install/common.py
    ├── ServiceError            something comfyfarm relies on failed: the farm, a file system, another program (1)
    │    ├── DeadlineError …          flame_submitter.deadline.errors: the Web Service; SubmissionUncertain
    │    ├── DeadlineCloudError …     flame_submitter.deadline_cloud.cli: the Deadline Cloud CLI; PartlySubmitted
    │    ├── JobFolderError           flame_submitter.jobs.builder (also an OSError)
    │    ├── ManifestError            farm_plugin.installation.manifest
    │    ├── PythonProbeError         farm_plugin.installation.pythons
    │    ├── PassImportError          flame_submitter.flame.relink: Flame would not import a render
    │    ├── WorkerServiceError …     farm_plugin.service.state: the Worker's ComfyUI service; ServiceUnavailable
    │    └── DependencyError, RuntimeCheckError   install/comfyfarm_install/
    ├── ComfyUIError …          ComfyUI failed: farm_plugin.comfyui.errors draws its tree (1)
    ├── ChunkError              a chunk did not finish: farm_plugin.runner.chunk (1)
    │    ├── ChunkFailed
    │    │    └── ComfyUILost         (the chunk runner exits 3: ComfyUI's owner may restart it)
    │    └── ChunkCancelled           (also Cancelled)
    └── Cancelled               the artist (Ctrl-C) or the farm (SIGTERM) stopped the work (130)

An error that is two things says so by inheriting both: ``ComfyUIAddressError`` is a ComfyUIError and
BadInput (a URL written wrong), ``DeadlineCloudMissing`` a DeadlineCloudError and BadInput (install the
CLI). The numbers are the ``comfyfarm`` command's exit status for each category; the installer
(``install.sh``) keeps its own: 1 for any installation that cannot be done, whatever the category.

Outside the tree, on purpose: the Deadline plugin file (``farm_plugin/ComfyUI/ComfyUI.py``), which runs in
Deadline's own Python and imports nothing of comfyfarm; the ComfyUI custom-node pack
(``farm_plugin/ComfyUINodes/comfyfarm_frames``), which runs inside ComfyUI and reports bad input as
``ValueError`` (ComfyUI shows its text); the Flame hook
(``flame_submitter/hooks/comfyfarm_hooks.py``), which imports nothing heavy when Flame starts; and
``install/comfyui_setup.py`` (its ``SetupError``), which runs on any Python, standard library only, before
comfyfarm is installed. They raise standard exceptions or keep their own.

This module imports nothing of comfyfarm, so every module may import it.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CANCELLED",
    "EXIT_COMFYUI_LOST",
    "EXIT_FAILED",
    "EXIT_NO_SERVICE",
    "EXIT_OK",
    "BadInput",
    "Cancelled",
    "ComfyfarmError",
    "ServiceError",
    "UsageError",
    "exit_code",
]

# The exit codes of the ``comfyfarm`` command and of the worker processes (the chunk runner, the OpenJD
# steps, the relink event's completion command). For the workers they are a protocol: the Deadline plugin
# (farm_plugin/ComfyUI/ComfyUI.py, which cannot import comfyfarm) repeats EXIT_OK, EXIT_COMFYUI_LOST,
# EXIT_NO_SERVICE and EXIT_CANCELLED, and the OpenJD task reads the chunk runner's;
# tests/farm_plugin/test_errors.py keeps the copies equal.
EXIT_OK = 0
EXIT_FAILED = 1  # it failed (the farm, a service, ComfyUI, a frame): the last line says why
EXIT_BAD_INPUT = 2  # bad arguments or input: nothing was started
EXIT_COMFYUI_LOST = 3  # the chunk runner only: ComfyUI stopped, hung or cannot be reached; its owner may restart it
EXIT_NO_SERVICE = 4  # ``python -m farm_plugin.service prepare`` only: no service answers; start your own ComfyUI
EXIT_CANCELLED = 130  # Ctrl-C or SIGTERM: finished frames stay, no partial file


class ComfyfarmError(Exception):
    """Base of every error comfyfarm raises on purpose: the message says what went wrong and how to fix it."""


class BadInput(ComfyfarmError):
    """What the user gave (an option, a path, a workflow package, a parameter, the configuration) is wrong."""


class UsageError(BadInput):
    """A command-line option, or a combination of options, that cannot work: printed as one line."""


class ServiceError(ComfyfarmError):
    """Something comfyfarm relies on failed: the farm, Deadline's Web Service or Deadline Cloud, a file system,
    or another program."""


class Cancelled(ComfyfarmError):
    """The artist (Ctrl-C) or the farm (SIGTERM) stopped the work: finished frames stay."""


def exit_code(error: BaseException) -> int:
    """The ``comfyfarm`` command's exit status when ``error`` ends it.

    2 for bad input, 130 for a cancel (:class:`Cancelled`, or Ctrl-C's ``KeyboardInterrupt``), 1 for anything
    else: the farm, a service, ComfyUI or a chunk failed (or an error outside the tree, such as an ``OSError``).
    """
    if isinstance(error, BadInput):
        return EXIT_BAD_INPUT
    if isinstance(error, (Cancelled, KeyboardInterrupt)):
        return EXIT_CANCELLED
    return EXIT_FAILED
